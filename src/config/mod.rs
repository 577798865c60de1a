//! Configuration: YAML text → raw serde structs → validated, typed [`Config`].
//!
//! Owns the schema (the contract in the README), every validation rule and the
//! embedded default. Durations, sizes, globs, label predicates and the schedule are
//! parsed here, once, at load. Must not talk to Docker or read the clock.

pub mod schedule;
mod types;

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

/// Read and validate a configuration file.
pub fn load_file(path: &Path) -> Result<Config, ConfigError> {
    let _ = path;
    todo!("config loading")
}

/// Validate configuration text; `origin` names it in messages (usually the file path).
pub fn parse_str(text: &str, origin: &str) -> Result<Config, ConfigError> {
    let _ = (text, origin);
    todo!("config parsing")
}

/// The configuration used when no file exists: one policy `builder-stages` matching
/// `stage=builder` with `min_age: 1h`, the classic recipe made safe.
#[must_use]
pub fn embedded_default() -> Config {
    todo!("embedded default")
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
/// validated by the same rules as a file, with the flag name as the location.
pub fn adhoc_policy(flags: &AdhocPolicy) -> Result<Policy, ConfigError> {
    let _ = flags;
    todo!("adhoc policy")
}

/// One line per policy, for `stagesweep check-config`.
#[must_use]
pub fn summary_lines(config: &Config) -> Vec<String> {
    let _ = config;
    todo!("summary")
}
