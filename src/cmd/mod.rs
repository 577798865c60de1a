//! One module per subcommand, plus what they share: loading the configuration,
//! connecting to the engine and mapping errors to exit codes.

pub mod agent;
pub mod apply;
pub mod check_config;
pub mod prune;

use std::path::PathBuf;

use tracing::info;

use crate::cli::{AdhocArgs, ConfigArg};
use crate::config::{self, AdhocPolicy, Config, ConfigError};
use crate::engine::EngineError;
use crate::exit;

/// An error that ends the command, with its exit code.
#[derive(Debug, thiserror::Error)]
pub enum CmdError {
    #[error("{0}")]
    Config(#[from] ConfigError),
    #[error("{0}")]
    Engine(#[from] EngineError),
    #[error("{0}")]
    Locked(String),
    /// A plan file that cannot be applied (a usage error: nothing was deleted).
    #[error("{0}")]
    PlanFile(#[from] crate::apply::PlanFileError),
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

impl CmdError {
    /// The documented exit code for this error.
    #[must_use]
    pub fn exit_code(&self) -> i32 {
        match self {
            CmdError::Config(_) | CmdError::PlanFile(_) => exit::CONFIG,
            CmdError::Engine(_) => exit::UNREACHABLE,
            CmdError::Locked(_) => exit::LOCKED,
            CmdError::Other(_) => exit::ENVIRONMENT,
        }
    }
}

/// The path a command reads its configuration from, and whether it was asked for explicitly.
#[must_use]
pub fn config_path(arg: &ConfigArg) -> (PathBuf, bool) {
    match &arg.config {
        Some(p) => (p.clone(), true),
        None => (PathBuf::from(config::DEFAULT_PATH), false),
    }
}

/// Load the configuration: an explicit path must exist; the default path falls back
/// to the embedded default when missing.
pub fn load_config(arg: &ConfigArg) -> Result<Config, ConfigError> {
    let (path, explicit) = config_path(arg);
    if !explicit && !path.exists() {
        info!(path = %path.display(), "no configuration file; using the built-in policy (stage=builder, min_age 1h; build cache unused for 7d)");
        return Ok(config::embedded_default());
    }
    config::load_file(&path)
}

/// Apply ad-hoc policy flags, when any is given: they replace the configured policies, and
/// the `build_cache:` rules are left out (a one-off prune touches only the images it names).
pub fn apply_adhoc(config: &mut Config, args: &AdhocArgs) -> Result<(), ConfigError> {
    let flags = AdhocPolicy {
        labels: args.labels.clone(),
        min_age: args.min_age.clone(),
        max_age: args.max_age.clone(),
        keep_last: args.keep_last,
        group_by: args.group_by.clone(),
    };
    if !flags.is_empty() {
        config.policies = vec![config::adhoc_policy(&flags)?];
        config.build_cache.clear();
    }
    Ok(())
}
