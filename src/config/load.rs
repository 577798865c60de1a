//! Loading a configuration: reading a file (bounded), parsing and validating its text, the
//! embedded default, and the ad-hoc policy of `prune`/`plan` flags.

use std::path::Path;

use super::error::{ConfigError, Problem};
use super::limits::{self, MAX_CONFIG_BYTES};
use super::types::{Config, Policy};
use super::{ctx, describe, filter, policy, raw, validate};

/// The reference configuration, embedded in the binary (`config/default.yaml`).
pub const DEFAULT_YAML: &str = include_str!("../../config/default.yaml");

/// Read and validate a configuration file.
///
/// An empty file, or one without a `policies` key, is valid and has no policies:
/// nothing is deleted (the summary says so).
pub fn load_file(path: &Path) -> Result<Config, ConfigError> {
    let text = read_bounded(path).map_err(|e| {
        unreadable(
            path,
            &e,
            "pass --config PATH or set STAGESWEEP_CONFIG; without a file the embedded \
             default applies",
        )
    })?;
    parse_str(&text, &path.display().to_string())
}

/// Read and validate the configuration at the default path: `None` when nothing is there
/// (the path, or a directory on it, does not exist), and only then. Any other failure
/// (permission denied, a directory, an I/O error) is an error naming the path: falling back
/// to the built-in policy would silently run a policy the operator did not write.
pub fn load_default_file(path: &Path) -> Result<Option<Config>, ConfigError> {
    match read_bounded(path) {
        Ok(text) => parse_str(&text, &path.display().to_string()).map(Some),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(unreadable(
            path,
            &e,
            "the built-in policy applies only when the file does not exist: make it readable, \
             remove it, or pass --config PATH",
        )),
    }
}

fn unreadable(path: &Path, e: &std::io::Error, hint: &str) -> ConfigError {
    let origin = path.display().to_string();
    ConfigError {
        problems: vec![Problem {
            location: origin.clone(),
            path: String::new(),
            message: format!("cannot read configuration file {origin}: {e}"),
            hint: Some(hint.to_owned()),
        }],
    }
}

/// Read at most one byte more than [`MAX_CONFIG_BYTES`] (so [`parse_str`] can refuse it
/// without reading a huge file whole).
fn read_bounded(path: &Path) -> std::io::Result<String> {
    use std::io::Read as _;
    let mut text = String::new();
    std::fs::File::open(path)?
        .take(MAX_CONFIG_BYTES as u64 + 1)
        .read_to_string(&mut text)?;
    Ok(text)
}

/// Validate configuration text; `origin` names it in messages (usually the file path).
///
/// Every problem is reported at once, each at `origin:line:column` of the offending value.
/// Input beyond the limits in `config::limits` (size, depth, aliases, …) is refused.
pub fn parse_str(text: &str, origin: &str) -> Result<Config, ConfigError> {
    if text.len() > MAX_CONFIG_BYTES {
        return Err(ConfigError {
            problems: vec![Problem {
                location: origin.to_owned(),
                path: String::new(),
                message: format!("the file is larger than {MAX_CONFIG_BYTES} bytes"),
                hint: Some(limits::HINT.to_owned()),
            }],
        });
    }
    let raw = raw::parse(text, origin).map_err(|p| ConfigError { problems: vec![p] })?;
    validate::config(raw, origin)
}

/// The configuration used when no file exists: one policy `builder-stages` matching
/// `stage=builder` with `min_age: 1h`, the classic recipe made safe.
#[must_use]
pub fn embedded_default() -> Config {
    parse_str(DEFAULT_YAML, "config/default.yaml")
        .expect("config/default.yaml is valid (tested in tests/pure/config.rs)")
}

/// Ad-hoc policy flags of `stagesweep prune` and `stagesweep plan`; they replace the
/// configured policies.
#[derive(Debug, Clone, Default)]
pub struct AdhocPolicy {
    pub labels: Vec<String>,
    /// Docker CLI filters (`label=…`, `label!=…`, `until=…`, `dangling=…`).
    pub filters: Vec<String>,
    pub min_age: Option<String>,
    pub max_age: Option<String>,
    pub keep_last: Option<usize>,
    pub group_by: Option<String>,
}

impl AdhocPolicy {
    /// True when no flag was given.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
            && self.filters.is_empty()
            && self.min_age.is_none()
            && self.max_age.is_none()
            && self.keep_last.is_none()
            && self.group_by.is_none()
    }
}

/// Build the policy named `cli` from ad-hoc flags, validated by the same rules as a file,
/// with the flag name as the location (`--label`, `--filter`, `--min-age`, `--max-age`,
/// `--keep-last`, `--group-by`). `--filter` adds label predicates, `min_age` (`until=`)
/// and `dangling`; without any label predicate (from `--label` or `--filter label…`) the
/// policy selects `stage=builder`.
pub fn adhoc_policy(flags: &AdhocPolicy) -> Result<Policy, ConfigError> {
    let mut ctx = ctx::Ctx::flags();
    let filters = filter::translate(&mut ctx, &flags.filters, flags.min_age.is_some());
    let mut labels = flags.labels.clone();
    labels.extend(filters.labels);
    if labels.is_empty() {
        labels.push("stage=builder".to_owned());
    }
    let text = |v: Option<String>| v.map(raw::unplaced);
    let raw_policy = raw::RawPolicy {
        name: Some(raw::unplaced("cli".to_owned())),
        matcher: Some(raw::unplaced(raw::RawMatch {
            labels: Some(labels.into_iter().map(raw::unplaced).collect()),
            dangling: text(filters.dangling),
            ..raw::RawMatch::default()
        })),
        min_age: text(flags.min_age.clone().or(filters.min_age)),
        max_age: text(flags.max_age.clone()),
        keep_last: flags
            .keep_last
            .map(|n| raw::unplaced(i64::try_from(n).unwrap_or(i64::MAX))),
        group_by: text(flags.group_by.clone()),
        max_total_size: None,
        all_references: None,
        unused_for: None,
        order: None,
        when: None,
        parents: None,
    };
    let policy = policy::policy(&mut ctx, &raw_policy, serde_saphyr::Location::UNKNOWN, "");
    let policy = ctx.finish(policy)?;
    Ok(policy.expect("a policy without problems is built"))
}

/// One line per policy, then the protection list and the agent schedule, for
/// `stagesweep check-config`.
#[must_use]
pub fn summary_lines(config: &Config) -> Vec<String> {
    describe::lines(config)
}

#[cfg(test)]
#[path = "load_tests.rs"]
mod tests;
