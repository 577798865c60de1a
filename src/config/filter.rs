//! `--filter KEY=VALUE` in the docker CLI's syntax (`docker image prune --filter …`), mapped
//! onto the ad-hoc policy where the meaning is the same, refused with the reason where it
//! is not:
//!
//! | docker filter | ad-hoc policy |
//! |---|---|
//! | `label=KEY` | `--label KEY` (the label is present) |
//! | `label=KEY=VALUE` | `--label KEY=VALUE` |
//! | `label!=KEY=VALUE` | `--label KEY!=VALUE` (absent, or another value) |
//! | `until=DURATION` | `--min-age DURATION`: docker deletes only images created before `now - DURATION` |
//! | `dangling=true` / `dangling=false` (also `1` / `0`) | `match.dangling: true` / `false` |
//!
//! Refused: `label!=KEY` (docker: the label is absent; stagesweep has no such predicate),
//! `until=` with a timestamp (only a duration is a grace period), and every other key
//! (`before`, `since`, `reference`, …). Pure: text in, values and problems out.

use serde_saphyr::Location;

use super::ctx::Ctx;
use super::predicate::LabelPredicate;
use super::values::{self, Bad};

/// The flag name problems are reported at.
const FLAG: &str = "filter";

/// What the filters add to the ad-hoc policy, as flag text (validated again with the
/// policy, like the flags themselves).
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Filters {
    /// Label predicates in stagesweep's syntax.
    pub labels: Vec<String>,
    /// `until=`: the policy's `min_age`.
    pub min_age: Option<String>,
    /// `dangling=`: `"true"` or `"false"`.
    pub dangling: Option<String>,
}

/// Translate every `--filter`; each problem is recorded at `--filter`. `min_age_flag`: the
/// policy already has `--min-age`, which `until=` would contradict.
pub(super) fn translate(ctx: &mut Ctx, filters: &[String], min_age_flag: bool) -> Filters {
    let mut out = Filters::default();
    for text in filters {
        if let Err(bad) = one(&mut out, text, min_age_flag) {
            ctx.push(Location::UNKNOWN, FLAG, bad);
        }
    }
    out
}

fn one(out: &mut Filters, text: &str, min_age_flag: bool) -> Result<(), Bad> {
    let (key, negated, value) = match text.split_once('=') {
        Some((k, v)) => match k.strip_suffix('!') {
            Some(k) => (k, true, v),
            None => (k, false, v),
        },
        None => {
            return Err(Bad::new(
                format!("filter {text:?} is not KEY=VALUE"),
                "write it as docker does, e.g. --filter label=stage=builder or --filter until=24h",
            ));
        }
    };
    match (key, negated) {
        ("label", _) => out.labels.push(label(text, value, negated)?),
        ("until", false) => {
            if min_age_flag || out.min_age.is_some() {
                return Err(Bad::new(
                    format!("filter {text:?} sets the grace period a second time"),
                    "until=DURATION is --min-age DURATION; give only one of them",
                ));
            }
            out.min_age = Some(until(text, value)?);
        }
        ("dangling", false) => {
            let wanted = match value {
                "true" | "1" => "true",
                "false" | "0" => "false",
                _ => {
                    return Err(Bad::new(
                        format!("filter {text:?} is not dangling=true or dangling=false"),
                        "dangling=true selects images without any reference, dangling=false \
                         images with one",
                    ));
                }
            };
            if out.dangling.as_deref().is_some_and(|d| d != wanted) {
                return Err(Bad::new(
                    format!("filter {text:?} contradicts an earlier dangling filter"),
                    "give dangling=true or dangling=false, not both",
                ));
            }
            out.dangling = Some(wanted.to_owned());
        }
        _ => {
            return Err(Bad::new(
                format!("filter {text:?} has no stagesweep equivalent"),
                "--filter takes label=KEY[=VALUE], label!=KEY=VALUE, until=DURATION and \
                 dangling=true|false; select by reference in a configuration file \
                 (match.references)",
            ));
        }
    }
    Ok(())
}

/// `label=KEY[=VALUE]` → `KEY[=VALUE]`; `label!=KEY=VALUE` → `KEY!=VALUE`.
fn label(text: &str, value: &str, negated: bool) -> Result<String, Bad> {
    let predicate = if negated {
        let Some((key, v)) = value.split_once('=') else {
            return Err(Bad::new(
                format!("filter {text:?} (the label is absent) has no stagesweep equivalent"),
                "use label!=KEY=VALUE (absent, or another value), or keep such images with \
                 protect.labels",
            ));
        };
        format!("{key}!={v}")
    } else {
        value.to_owned()
    };
    LabelPredicate::parse(&predicate)
        .map_err(|e| Bad::new(format!("filter {text:?}: {}", e.message), e.hint))?;
    Ok(predicate)
}

/// `until=DURATION` → the duration text; a timestamp is refused.
fn until(text: &str, value: &str) -> Result<String, Bad> {
    values::duration("until", value).map_err(|e| {
        Bad::new(
            format!("filter {text:?} is not until=DURATION: {}", e.message),
            "only a duration maps to --min-age (docker's until=24h deletes images created \
             more than 24h ago); a timestamp has no equivalent",
        )
    })?;
    Ok(value.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(filters: &[&str]) -> Filters {
        let mut ctx = Ctx::flags();
        let list: Vec<String> = filters.iter().map(|s| (*s).to_owned()).collect();
        let out = translate(&mut ctx, &list, false);
        ctx.finish(out).expect("valid filters")
    }

    fn problem(filters: &[&str], min_age_flag: bool) -> String {
        let mut ctx = Ctx::flags();
        let list: Vec<String> = filters.iter().map(|s| (*s).to_owned()).collect();
        let out = translate(&mut ctx, &list, min_age_flag);
        let err = ctx.finish(out).expect_err("a problem");
        assert_eq!(err.problems.len(), 1, "{err}");
        let p = &err.problems[0];
        assert_eq!(p.location, "--filter");
        assert!(p.hint.as_deref().is_some_and(|h| !h.is_empty()), "{err}");
        p.message.clone()
    }

    #[test]
    fn docker_filters_that_map_cleanly() {
        let cases: &[(&[&str], Filters)] = &[
            (
                &["label=stage=builder"],
                Filters {
                    labels: vec!["stage=builder".into()],
                    ..Filters::default()
                },
            ),
            (
                &["label=stage", "label!=team=infra", "label=note=a=b"],
                Filters {
                    labels: vec!["stage".into(), "team!=infra".into(), "note=a=b".into()],
                    ..Filters::default()
                },
            ),
            (
                &["until=24h"],
                Filters {
                    min_age: Some("24h".into()),
                    ..Filters::default()
                },
            ),
            (
                &["until=1h30m", "dangling=1", "dangling=true"],
                Filters {
                    min_age: Some("1h30m".into()),
                    dangling: Some("true".into()),
                    ..Filters::default()
                },
            ),
            (
                &["dangling=0"],
                Filters {
                    dangling: Some("false".into()),
                    ..Filters::default()
                },
            ),
        ];
        for (filters, want) in cases {
            assert_eq!(&ok(filters), want, "{filters:?}");
        }
    }

    #[test]
    fn docker_filters_without_an_equivalent_are_refused() {
        let cases: &[(&[&str], bool, &str)] = &[
            (
                &["label!=stage"],
                false,
                "(the label is absent) has no stagesweep",
            ),
            (
                &["until=2024-01-01T00:00:00"],
                false,
                "is not until=DURATION",
            ),
            (&["until=1700000000"], false, "is not until=DURATION"),
            (&["until=24h"], true, "sets the grace period a second time"),
            (&["until=1h", "until=2h"], false, "a second time"),
            (
                &["dangling=maybe"],
                false,
                "is not dangling=true or dangling=false",
            ),
            (&["dangling=true", "dangling=false"], false, "contradicts"),
            (&["before=app:1"], false, "has no stagesweep equivalent"),
            (&["reference=app:*"], false, "has no stagesweep equivalent"),
            (&["until!=1h"], false, "has no stagesweep equivalent"),
            (&["stage=builder"], false, "has no stagesweep equivalent"),
            (&["label"], false, "is not KEY=VALUE"),
            (&["label=stage = builder"], false, "has spaces around \"=\""),
            (&["label="], false, "has an empty key"),
        ];
        for (filters, min_age_flag, want) in cases {
            let message = problem(filters, *min_age_flag);
            assert!(message.contains(want), "{filters:?}: {message}");
        }
    }
}
