//! Configuration: YAML text → raw serde structs → validated, typed [`Config`].
//!
//! Owns the schema (the contract in the README), every validation rule and the
//! embedded default. Durations, sizes, globs, label predicates and the schedule are
//! parsed here, once, at load. Must not talk to Docker or read the clock.

mod cache;
mod policy;
mod raw;
pub mod schedule;
mod summary;
mod types;
mod validate;
mod values;

pub use cache::{CacheRule, SharedRecords, default_types as default_cache_types};
pub use types::*;

use std::path::Path;

/// Where `stagesweep` looks for its configuration when neither `--config` nor
/// `STAGESWEEP_CONFIG` is given.
pub const DEFAULT_PATH: &str = "/etc/stagesweep/config.yaml";

/// Every problem found in a configuration, each with its location, field path and hint.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{}", render_problems(.problems))]
pub struct ConfigError {
    pub problems: Vec<Problem>,
}

/// One configuration problem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// `file:line:column`, or the origin alone (e.g. `--max-age`) when there is no position.
    pub location: String,
    /// Field path such as `policies[1].keep_last` (empty when the whole document is at fault).
    pub path: String,
    /// What is wrong, naming the offending value.
    pub message: String,
    /// The way out.
    pub hint: Option<String>,
}

fn render_problems(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(|p| {
            let mut line = p.location.clone();
            if !p.path.is_empty() {
                line.push_str(": ");
                line.push_str(&p.path);
            }
            line.push_str(": ");
            line.push_str(&p.message);
            if let Some(h) = &p.hint {
                line.push_str(" (");
                line.push_str(h);
                line.push(')');
            }
            line
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The reference configuration, embedded in the binary (`config/default.yaml`).
pub const DEFAULT_YAML: &str = include_str!("../../config/default.yaml");

/// Read and validate a configuration file.
///
/// An empty file, or one without a `policies` key, is valid and has no policies:
/// nothing is deleted (the summary says so).
pub fn load_file(path: &Path) -> Result<Config, ConfigError> {
    let origin = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
        problems: vec![Problem {
            location: origin.clone(),
            path: String::new(),
            message: format!("cannot read configuration file {origin}: {e}"),
            hint: Some(
                "pass --config PATH or set STAGESWEEP_CONFIG; without a file the embedded \
                 default applies"
                    .to_owned(),
            ),
        }],
    })?;
    parse_str(&text, &origin)
}

/// Validate configuration text; `origin` names it in messages (usually the file path).
///
/// Every problem is reported at once, each at `origin:line:column` of the offending value.
pub fn parse_str(text: &str, origin: &str) -> Result<Config, ConfigError> {
    let raw = raw::parse(text, origin).map_err(|p| ConfigError { problems: vec![p] })?;
    validate::config(raw, origin)
}

/// The configuration used when no file exists: one policy `builder-stages` matching
/// `stage=builder` with `min_age: 1h`, the classic recipe made safe.
#[must_use]
pub fn embedded_default() -> Config {
    parse_str(DEFAULT_YAML, "config/default.yaml")
        .expect("config/default.yaml is valid (tested in tests/config.rs)")
}

/// Ad-hoc policy flags of `stagesweep prune`; they replace the configured policies.
#[derive(Debug, Clone, Default)]
pub struct AdhocPolicy {
    pub labels: Vec<String>,
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
            && self.min_age.is_none()
            && self.max_age.is_none()
            && self.keep_last.is_none()
            && self.group_by.is_none()
    }
}

/// Build the policy named `cli` from ad-hoc flags (labels default to `stage=builder`),
/// validated by the same rules as a file, with the flag name as the location
/// (`--label`, `--min-age`, `--max-age`, `--keep-last`, `--group-by`).
pub fn adhoc_policy(flags: &AdhocPolicy) -> Result<Policy, ConfigError> {
    let labels = if flags.labels.is_empty() {
        vec!["stage=builder".to_owned()]
    } else {
        flags.labels.clone()
    };
    let text = |v: &Option<String>| v.clone().map(raw::unplaced);
    let raw_policy = raw::RawPolicy {
        name: Some(raw::unplaced("cli".to_owned())),
        matcher: Some(raw::unplaced(raw::RawMatch {
            labels: Some(labels.into_iter().map(raw::unplaced).collect()),
            ..raw::RawMatch::default()
        })),
        min_age: text(&flags.min_age),
        max_age: text(&flags.max_age),
        keep_last: flags
            .keep_last
            .map(|n| raw::unplaced(i64::try_from(n).unwrap_or(i64::MAX))),
        group_by: text(&flags.group_by),
        max_total_size: None,
        all_references: None,
    };
    let mut ctx = validate::Ctx::flags();
    let policy = policy::policy(&mut ctx, &raw_policy, serde_saphyr::Location::UNKNOWN, "");
    let policy = ctx.finish(policy)?;
    Ok(policy.expect("a policy without problems is built"))
}

/// One line per policy, then the protection list and the agent schedule, for
/// `stagesweep check-config`.
#[must_use]
pub fn summary_lines(config: &Config) -> Vec<String> {
    summary::lines(config)
}

#[cfg(test)]
mod tests;
