//! `stagesweep prune` and `stagesweep plan`: one pass, printed.

use std::io::IsTerminal;

use chrono::Utc;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::cli::{ConfigArg, Only, Output, PlanArgs, PruneArgs};
use super::{CmdError, apply_adhoc, connect, load_config, stdout};
use crate::builds::{Coordination, GateOutcome};
use crate::config::{Config, ConfigError, Problem};
use crate::engine::docker::DockerEngine;
use crate::locks::{HostLock, LockError};
use crate::pass::{HistoryUse, PassOptions, PassReport, run_pass_with};
use crate::plan::Action;
use crate::report;

/// Run `prune`; returns the exit code (0, or 1 when some deletions failed).
pub async fn prune(config_arg: &ConfigArg, args: &PruneArgs) -> Result<i32, CmdError> {
    let mut config = load_config(config_arg)?;
    apply_adhoc(&mut config, &args.adhoc)?;
    if let Some(path) = args
        .lock_file
        .as_ref()
        .filter(|p| **p == config.builds.lock_file)
    {
        return Err(lock_file_is_the_build_lock(path).into());
    }
    let engine = connect(&config).await?;
    let _lock = if args.dry_run {
        None // a dry run changes nothing, so it cannot race with another pass
    } else {
        let path = args
            .lock_file
            .clone()
            .unwrap_or_else(|| config.agent.lock_file.clone());
        take_lock(path, !args.no_wait).await?
    };
    let opts = PassOptions {
        dry_run: args.dry_run,
        progress: args.output == Output::Text && std::io::stderr().is_terminal(),
        builds: (!args.dry_run).then(|| Coordination {
            config: config.builds.clone(),
            wait: !args.no_wait,
        }),
        require_disk: true,
    };
    let report = pass(&engine, &config, &opts).await?;
    print(&report, args.output, run_shows(args.output))?;
    exit_code(&report)
}

/// What a run that deleted shows: the table lists deletions, the JSON document every
/// decision.
pub(super) fn run_shows(output: Output) -> &'static [Action] {
    match output {
        Output::Text => &[Action::Delete],
        Output::Json => &report::ALL_ACTIONS,
    }
}

/// 4 when a build held the deletions back (`--no-wait`, or `max_defer` ran out), 1 when
/// some deletions failed, else 0; the engine going away mid-pass is an error (exit 3) after
/// the report was printed.
pub(super) fn exit_code(report: &PassReport) -> Result<i32, CmdError> {
    if let Some(error) = &report.engine_lost {
        return Err(CmdError::EngineLost {
            error: error.clone(),
            planned: report.plan.deletions.len(),
            not_attempted: report.summary.not_attempted,
        });
    }
    let held_back = report.builds.as_ref().map(|b| b.outcome);
    Ok(
        if matches!(held_back, Some(GateOutcome::NoWait | GateOutcome::Expired)) {
            crate::exit::LOCKED
        } else if report.summary.some_failed() {
            crate::exit::DELETIONS_FAILED
        } else {
            crate::exit::OK
        },
    )
}

/// `--lock-file` naming the build lock: the pass would hold the lock it must take, and
/// defer every deletion.
fn lock_file_is_the_build_lock(path: &std::path::Path) -> ConfigError {
    ConfigError {
        problems: vec![Problem {
            location: "--lock-file".to_owned(),
            path: String::new(),
            message: format!(
                "--lock-file {} is the build lock (builds.lock_file)",
                path.display()
            ),
            hint: Some(
                "the pass lock and the build lock are separate files; use the agent's \
                 lock_file, e.g. /run/stagesweep/stagesweep.lock"
                    .to_owned(),
            ),
        }],
    }
}

/// Run `plan`: a dry run that lists every decision.
pub async fn plan(config_arg: &ConfigArg, args: &PlanArgs) -> Result<i32, CmdError> {
    let mut config = load_config(config_arg)?;
    apply_adhoc(&mut config, &args.adhoc)?;
    let engine = connect(&config).await?;
    let opts = PassOptions {
        dry_run: true,
        require_disk: true,
        ..PassOptions::default()
    };
    let report = pass(&engine, &config, &opts).await?;
    print(&report, args.output, &shown_actions(&args.only))?;
    Ok(crate::exit::OK)
}

async fn pass(
    engine: &DockerEngine,
    config: &Config,
    opts: &PassOptions,
) -> Result<PassReport, CmdError> {
    let (stop, watcher) = stop_on_ctrl_c();
    let result = run_pass_with(engine, config, Utc::now(), opts, &stop, HistoryUse::File).await;
    watcher.abort();
    let report = result?;
    debug!(summary = %report::report_summary_line(&report), "pass finished");
    Ok(report)
}

/// Ctrl-C: start no new deletions, let in-flight ones finish, report what happened. Abort
/// the returned task when done.
pub(super) fn stop_on_ctrl_c() -> (CancellationToken, tokio::task::JoinHandle<()>) {
    let stop = CancellationToken::new();
    let ctrl_c = stop.clone();
    let watcher = tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            warn!("interrupted: finishing in-flight deletions, starting no new ones");
            ctrl_c.cancel();
        }
    });
    (stop, watcher)
}

/// Take the host lock. A lock that cannot be used (its directory cannot be created, the file
/// cannot be opened) stops the command with nothing deleted (exit 5): another pass on this
/// host may use that lock, so going on without it could run two passes at once.
pub(super) async fn take_lock(
    path: std::path::PathBuf,
    wait: bool,
) -> Result<Option<HostLock>, CmdError> {
    if wait {
        if let Ok(lock) = HostLock::try_acquire(&path) {
            return Ok(Some(lock));
        }
        info!(path = %path.display(), "another pass holds the host lock; waiting for it");
    }
    match HostLock::acquire(path, wait).await {
        Ok(lock) => Ok(Some(lock)),
        Err(e @ LockError::Busy { .. }) => Err(CmdError::Locked(e.to_string())),
        Err(e) => Err(CmdError::Other(e.into())),
    }
}

/// The actions `plan --only` asks for; all of them when none is given.
fn shown_actions(only: &[Only]) -> Vec<Action> {
    if only.is_empty() {
        return report::ALL_ACTIONS.to_vec();
    }
    only.iter()
        .map(|o| match o {
            Only::Delete => Action::Delete,
            Only::Keep => Action::Keep,
            Only::Untouched => Action::Untouched,
        })
        .collect()
}

pub(super) fn print(report: &PassReport, output: Output, shown: &[Action]) -> Result<(), CmdError> {
    match output {
        Output::Text => {
            stdout::print(|out| out.write_all(report::render_text(report, shown).as_bytes()))
        }
        // Streamed: at 100k images the document is tens of MB, never held as one string.
        Output::Json => stdout::json(&report::to_json(report, shown)),
    }
}
