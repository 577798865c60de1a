//! One module per subcommand, plus what they share: loading the configuration,
//! connecting to the engine and mapping errors to exit codes.

pub mod agent;
pub mod apply;
pub mod check_config;
pub mod cli;
pub mod du;
pub mod healthcheck;
pub mod hold;
pub mod logging;
mod man_config;
pub mod prune;
pub mod shell;
pub mod stdout;

use std::path::{Path, PathBuf};

use tracing::info;

use crate::config::{self, AdhocPolicy, Config, ConfigError};
use crate::engine::EngineError;
use crate::engine::docker::{self, ContextError, DockerEngine, Endpoint};
use crate::exit;
use crate::pass::PassError;
use cli::{AdhocArgs, ConfigArg};

/// An error that ends the command, with its exit code.
#[derive(Debug, thiserror::Error)]
pub enum CmdError {
    #[error("{0}")]
    Config(#[from] ConfigError),
    #[error("{0}")]
    Engine(#[from] EngineError),
    /// The docker CLI context (or `DOCKER_HOST`) names no usable engine.
    #[error("{0}")]
    Context(#[from] ContextError),
    /// The engine went away during the deletions; the report was printed.
    #[error(
        "{error}; the pass stopped: {not_attempted} of {planned} planned deletions were not attempted and nothing outside the plan was touched (run it again once docker answers)"
    )]
    EngineLost {
        error: EngineError,
        planned: usize,
        not_attempted: usize,
    },
    #[error("{0}")]
    Locked(String),
    /// A plan file that cannot be applied (a usage error: nothing was deleted).
    #[error("{0}")]
    PlanFile(#[from] crate::plan_file::PlanFileError),
    /// A bad command-line value that clap cannot check by itself.
    #[error("{0}")]
    Usage(String),
    #[error(transparent)]
    Hold(#[from] crate::builds::hold::HoldError),
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

impl CmdError {
    /// The documented exit code for this error.
    #[must_use]
    pub fn exit_code(&self) -> i32 {
        match self {
            CmdError::Config(_)
            | CmdError::Context(_)
            | CmdError::PlanFile(_)
            | CmdError::Usage(_) => exit::CONFIG,
            CmdError::Engine(_) | CmdError::EngineLost { .. } => exit::UNREACHABLE,
            CmdError::Locked(_) => exit::LOCKED,
            CmdError::Hold(e) => e.exit_code(),
            CmdError::Other(_) => exit::ENVIRONMENT,
        }
    }
}

impl From<PassError> for CmdError {
    fn from(e: PassError) -> Self {
        match e {
            PassError::Engine(e) => CmdError::Engine(e),
            // Percentages without a visible filesystem, or on one that is not the engine's,
            // are a configuration error (exit 2), found before anything is deleted; the
            // problem names the key that fixes it.
            PassError::Disk(e) => CmdError::Config(ConfigError {
                problems: vec![config::Problem {
                    location: "disk".to_owned(),
                    path: e.key().to_owned(),
                    message: e.to_string(),
                    hint: None,
                }],
            }),
            // Only the agent's passes end this way; a command reads `engine_lost` of its
            // report instead (see `prune::exit_code`).
            PassError::EngineLost { error, .. } => CmdError::Engine(error),
            PassError::Lock(e) => CmdError::Other(e.into()),
            PassError::History(e) => CmdError::Other(e.into()),
            PassError::PlanFile(e) => CmdError::PlanFile(e),
            PassError::BuildLock(e) => CmdError::Other(e.into()),
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
/// to the embedded default only when it does not exist.
pub fn load_config(arg: &ConfigArg) -> Result<Config, ConfigError> {
    let (path, explicit) = config_path(arg);
    if explicit {
        config::load_file(&path)
    } else {
        load_default(&path)
    }
}

/// The configuration at the default `path`, or the embedded default when nothing is there.
fn load_default(path: &Path) -> Result<Config, ConfigError> {
    if let Some(config) = config::load_default_file(path)? {
        return Ok(config);
    }
    info!(path = %path.display(), "no configuration file; using the built-in policy (stage=builder, min_age 1h; build cache unused for 7d)");
    Ok(config::embedded_default())
}

/// Apply ad-hoc policy flags, when any is given: they replace the configured policies, and
/// the `build_cache:` rules are left out (a one-off prune touches only the images it names).
pub fn apply_adhoc(config: &mut Config, args: &AdhocArgs) -> Result<(), ConfigError> {
    let flags = AdhocPolicy {
        labels: args.labels.clone(),
        filters: args.filters.clone(),
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

/// Which engine the commands talk to: `docker.host`, else `DOCKER_HOST`, else the docker CLI's
/// context (logged, since it is easy to forget), else the local socket.
pub fn endpoint(config: &Config) -> Result<Endpoint, CmdError> {
    let endpoint = Endpoint::from_env(config.docker.host.as_deref())?;
    if let Some(name) = endpoint.context() {
        info!(context = name, host = %endpoint.host, from = %endpoint.source, "using a docker CLI context");
    }
    Ok(endpoint)
}

/// Resolve the engine ([`endpoint`]) and connect to it.
pub async fn connect(config: &Config) -> Result<DockerEngine, CmdError> {
    let endpoint = endpoint(config)?;
    Ok(docker::connect_to(&endpoint, &config.docker).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_path_falls_back_only_when_absent() {
        let dir = tempfile::tempdir().expect("temp dir");
        let absent = dir.path().join("missing/config.yaml");
        let config = load_default(&absent).expect("absent: the built-in policy");
        assert_eq!(config.policies[0].name, "builder-stages");

        let file = dir.path().join("config.yaml");
        std::fs::write(&file, "policies: []\n").expect("write");
        assert!(load_default(&file).expect("valid").policies.is_empty());

        // A directory at the path, and a path under a regular file: there is something
        // there, so the built-in policy must not silently apply.
        for unreadable in [dir.path().to_path_buf(), file.join("config.yaml")] {
            let err = load_default(&unreadable).expect_err("not a readable file");
            assert_eq!(err.problems.len(), 1);
            let shown = err.to_string();
            assert!(
                shown.contains(&format!(
                    "cannot read configuration file {}",
                    unreadable.display()
                )),
                "{shown}"
            );
            assert!(
                shown.contains("only when the file does not exist"),
                "{shown}"
            );
            assert_eq!(CmdError::from(err).exit_code(), exit::CONFIG);
        }
    }
}
