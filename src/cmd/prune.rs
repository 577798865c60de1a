//! `stagesweep prune` and `stagesweep plan`: one pass, printed.

use std::io::{self, BufWriter, IsTerminal, Write};

use chrono::Utc;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::{CmdError, apply_adhoc, load_config};
use crate::cli::{ConfigArg, Output, PlanArgs, PruneArgs};
use crate::config::Config;
use crate::engine::docker::{self, DockerEngine};
use crate::lock::{HostLock, LockError};
use crate::pass::{PassOptions, PassReport, run_pass};
use crate::report;

/// Run `prune`; returns the exit code (0, or 1 when some deletions failed).
pub async fn prune(config_arg: &ConfigArg, args: &PruneArgs) -> Result<i32, CmdError> {
    let mut config = load_config(config_arg)?;
    apply_adhoc(&mut config, &args.adhoc)?;
    let engine = docker::connect(&config.docker).await?;
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
    };
    let report = pass(&engine, &config, &opts).await?;
    print(&report, args.output, false)?;
    Ok(exit_code(&report))
}

/// 1 when some deletions failed, else 0.
pub(super) fn exit_code(report: &PassReport) -> i32 {
    if report.summary.some_failed() {
        crate::exit::DELETIONS_FAILED
    } else {
        crate::exit::OK
    }
}

/// Run `plan`: a dry run that lists every decision.
pub async fn plan(config_arg: &ConfigArg, args: &PlanArgs) -> Result<i32, CmdError> {
    let mut config = load_config(config_arg)?;
    apply_adhoc(&mut config, &args.adhoc)?;
    let engine = docker::connect(&config.docker).await?;
    let opts = PassOptions {
        dry_run: true,
        progress: false,
    };
    let report = pass(&engine, &config, &opts).await?;
    print(&report, args.output, true)?;
    Ok(crate::exit::OK)
}

async fn pass(
    engine: &DockerEngine,
    config: &Config,
    opts: &PassOptions,
) -> Result<PassReport, CmdError> {
    let (stop, watcher) = stop_on_ctrl_c();
    let result = run_pass(engine, config, Utc::now(), opts, &stop).await;
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

/// Take the host lock. When its directory does not exist and cannot be created, no agent
/// on this host uses that path, so there is nothing to race with: go on without it.
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
        Err(LockError::CreateDir { dir, source }) => {
            warn!(dir = %dir.display(), error = %source, "no lock directory and cannot create it; no agent uses it, going on without the host lock");
            Ok(None)
        }
        Err(e @ LockError::Busy { .. }) => Err(CmdError::Locked(e.to_string())),
        Err(e) => Err(CmdError::Other(e.into())),
    }
}

pub(super) fn print(report: &PassReport, output: Output, all: bool) -> Result<(), CmdError> {
    let mut out = BufWriter::new(io::stdout().lock());
    let written = match output {
        Output::Text => out.write_all(report::render_text(report, all).as_bytes()),
        // Streamed: at 100k images the document is tens of MB, never held as one string.
        Output::Json => serde_json::to_writer_pretty(&mut out, &report::to_json(report))
            .map_err(io::Error::from)
            .and_then(|()| writeln!(out)),
    };
    match written.and_then(|()| out.flush()) {
        // A reader that stopped early (`| head`) is not a failure of the pass.
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        other => other.map_err(|e| CmdError::Other(e.into())),
    }
}
