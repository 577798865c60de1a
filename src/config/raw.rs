//! The raw YAML schema: serde structs that mirror the file exactly (`deny_unknown_fields`,
//! everything optional) and keep the source position of every scalar as a
//! [`Spanned`] so that semantic validation can point at `file:line:column`.
//!
//! Owns turning text into these structs; a YAML or type error becomes one [`Problem`]
//! with the parser's position and the field path. Must not interpret any value.

use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_saphyr::{Location, MessageFormatter, Spanned, UserMessageFormatter};

use super::error::Problem;

/// A scalar with its position in the file.
pub(super) type S<T> = Spanned<T>;

/// The whole file. An empty file (or one with only comments) is all defaults and no
/// policies: nothing is deleted.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    pub docker: Option<RawDocker>,
    pub protect: Option<RawProtect>,
    pub policies: Option<Vec<S<RawPolicy>>>,
    pub build_cache: Option<Vec<S<RawCacheRule>>>,
    pub schedule: Option<S<String>>,
    pub timezone: Option<S<String>>,
    pub jitter: Option<S<String>>,
    pub run_on_start: Option<bool>,
    pub lock_file: Option<S<String>>,
    pub shutdown_timeout: Option<S<String>>,
    pub metrics: Option<RawMetrics>,
    pub builds: Option<RawBuilds>,
    pub history: Option<RawHistory>,
    pub disk: Option<RawDisk>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDocker {
    pub host: Option<S<String>>,
    pub timeout: Option<S<String>>,
    pub concurrency: Option<S<i64>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawProtect {
    pub references: Option<Vec<S<String>>>,
    pub labels: Option<Vec<S<String>>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPolicy {
    pub name: Option<S<String>>,
    #[serde(rename = "match")]
    pub matcher: Option<S<RawMatch>>,
    pub min_age: Option<S<String>>,
    pub max_age: Option<S<String>>,
    pub keep_last: Option<S<i64>>,
    pub group_by: Option<S<String>>,
    pub max_total_size: Option<S<String>>,
    pub all_references: Option<S<bool>>,
    pub unused_for: Option<S<String>>,
    pub order: Option<S<String>>,
    pub when: Option<S<String>>,
    pub parents: Option<S<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMatch {
    pub labels: Option<Vec<S<String>>>,
    pub references: Option<Vec<S<String>>>,
    pub dangling: Option<S<String>>,
    pub all_images: Option<S<bool>>,
}

/// One `build_cache:` rule. `labels`, `label`, `match` and `filters` are never valid (the
/// engine ignores label filters on build cache); they are read only to say so.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCacheRule {
    pub name: Option<S<String>>,
    pub types: Option<Vec<S<String>>>,
    pub shared: Option<S<String>>,
    pub unused_for: Option<S<String>>,
    pub keep_storage: Option<S<String>>,
    pub labels: Option<S<IgnoredAny>>,
    pub label: Option<S<IgnoredAny>>,
    #[serde(rename = "match")]
    pub matcher: Option<S<IgnoredAny>>,
    pub filters: Option<S<IgnoredAny>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMetrics {
    pub enabled: Option<bool>,
    pub listen: Option<S<String>>,
    pub group_by: Option<S<String>>,
    pub groups: Option<S<i64>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawBuilds {
    pub lock_file: Option<S<String>>,
    pub lock: Option<bool>,
    pub detect: Option<bool>,
    pub retry: Option<S<String>>,
    pub max_defer: Option<S<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawHistory {
    pub enabled: Option<bool>,
    pub path: Option<S<String>>,
    pub gap_policy: Option<S<String>>,
    pub catch_up: Option<S<String>>,
    pub half_life: Option<S<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDisk {
    pub high: Option<S<RawPercent>>,
    pub low: Option<S<RawPercent>>,
    pub inodes_high: Option<S<RawPercent>>,
    pub inodes_low: Option<S<RawPercent>>,
    pub path: Option<S<String>>,
    pub containerd_root: Option<S<String>>,
    pub measure: Option<S<String>>,
    pub max_images_bytes: Option<S<String>>,
    pub check_every: Option<S<String>>,
    pub forecast: Option<RawForecast>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawForecast {
    pub window: Option<S<String>>,
    pub preempt: Option<bool>,
}

/// A percentage as written: `85` or `"85%"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub(super) enum RawPercent {
    Number(i64),
    Text(String),
}

/// A value with no position (ad-hoc flags, built-in values).
pub(super) fn unplaced<T>(value: T) -> S<T> {
    Spanned::new(value, Location::UNKNOWN, Location::UNKNOWN)
}

/// Parse YAML text into the raw schema. Duplicate keys, unknown keys and type errors are
/// rejected here, as one problem with the parser's position and the field path.
pub(super) fn parse(text: &str, origin: &str) -> Result<RawConfig, Problem> {
    let options = super::limits::options();
    let mut path = String::new();
    let result = serde_saphyr::with_deserializer_from_str_with_options(text, options, |de| {
        serde_path_to_error::deserialize::<_, Option<RawConfig>>(de).map_err(|e| {
            path = clean_path(&e.path().to_string());
            e.into_inner()
        })
    });
    result.map(Option::unwrap_or_default).map_err(|e| {
        let location = match e.location() {
            Some(l) if l != Location::UNKNOWN => format!("{origin}:{}:{}", l.line(), l.column()),
            _ => origin.to_owned(),
        };
        let (message, hint) = explain(&UserMessageFormatter.format_message(&e));
        Problem {
            location,
            path,
            message,
            hint,
        }
    })
}

/// Drop the `value` segments that [`Spanned`] adds and the `?` of an unknown key:
/// `policies[1].value.keep_last.value` → `policies[1].keep_last`.
fn clean_path(path: &str) -> String {
    let mut out = String::new();
    for segment in path.split('.') {
        if segment == "value" || segment == "?" {
            continue;
        }
        if !out.is_empty() {
            out.push('.');
        }
        out.push_str(segment);
    }
    out
}

/// Make the parser's terse messages read as sentences, and add the way out.
fn explain(message: &str) -> (String, Option<String>) {
    let message = message.trim().trim_end_matches('.');
    let reworded = match message {
        "expected sequence start" => "expected a list here".to_owned(),
        "expected mapping start" => "expected a mapping (key: value) here".to_owned(),
        m if m.starts_with("invalid i64") => "expected a whole number here".to_owned(),
        m => m.to_owned(),
    };
    let hint = if reworded.contains("budget") || reworded.contains("limit exceeded") {
        Some(super::limits::HINT)
    } else if reworded.starts_with("unknown field") {
        Some("check the spelling; docs/configuration.md (man stagesweep.yaml) lists every key")
    } else if reworded.starts_with("duplicate mapping key") {
        Some("keep one of them")
    } else if reworded.starts_with("expected a list") {
        Some("write a YAML list, e.g. [\"stage=builder\"]")
    } else if reworded.starts_with("invalid") || reworded.starts_with("expected") {
        Some("docs/configuration.md (man stagesweep.yaml) gives the type of every key")
    } else {
        Some("fix the YAML syntax at this position")
    };
    (reworded, hint.map(str::to_owned))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problem(text: &str) -> Problem {
        parse(text, "c.yaml").expect_err(text)
    }

    #[test]
    fn empty_documents_are_all_defaults() {
        for text in ["", "# only a comment\n", "---\n"] {
            let raw = parse(text, "c.yaml").expect(text);
            assert!(raw.policies.is_none() && raw.docker.is_none());
        }
    }

    #[test]
    fn scalars_keep_their_position() {
        let raw = parse("docker:\n  timeout: 60s\n", "c.yaml").expect("valid");
        let timeout = raw.docker.and_then(|d| d.timeout).expect("present");
        assert_eq!(timeout.value, "60s");
        assert_eq!(
            (timeout.referenced.line(), timeout.referenced.column()),
            (2, 12)
        );
    }

    #[test]
    fn errors_carry_position_and_clean_path() {
        let cases = [
            (
                "policies:\n  - name: a\n    max_agee: 1h\n",
                "c.yaml:3:5",
                "policies[0].max_agee",
                "unknown field `max_agee`",
            ),
            (
                "policies:\n  - name: a\n  - name: b\n    keep_last: two\n",
                "c.yaml:4:16",
                "policies[1].keep_last",
                "expected a whole number here",
            ),
            (
                "docker:\n  timeout: 1s\n  timeout: 2s\n",
                "c.yaml:3:3",
                "docker",
                "duplicate mapping key",
            ),
            (
                "docker:\n  timeout: 60s\n   bad: x\n",
                "c.yaml:3:7",
                "docker",
                "mapping values are not allowed",
            ),
            ("docker: [\n", "c.yaml:1:9", "docker", "expected a mapping"),
            (
                "policies:\n  - match:\n      labels: stage=builder\n",
                "c.yaml:3:15",
                "policies[0].match.labels",
                "expected a list here",
            ),
        ];
        for (text, location, path, message) in cases {
            let p = problem(text);
            assert_eq!(p.location, location, "{text}");
            assert_eq!(p.path, path, "{text}");
            assert!(p.message.starts_with(message), "{text}: {}", p.message);
            assert!(p.hint.is_some());
        }
    }

    #[test]
    fn clean_path_drops_span_segments() {
        assert_eq!(
            clean_path("policies[1].value.keep_last.value"),
            "policies[1].keep_last"
        );
        assert_eq!(clean_path("docker.?"), "docker");
        assert_eq!(clean_path("?"), "");
    }
}
