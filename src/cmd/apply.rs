//! `stagesweep apply FILE`: delete exactly what a reviewed plan file lists, under the host
//! lock, after checking that it was made for this engine and recently enough.

use std::path::PathBuf;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::cli::{ApplyArgs, ConfigArg, Output};
use super::prune::{exit_code, print, run_shows, stop_on_ctrl_c, take_lock};
use super::{CmdError, connect, load_config};
use crate::builds::Coordination;
use crate::locks::{HostLock, LockError};
use crate::pass::{self, ApplyLimits, PassOptions};
use crate::plan_file::{self, PlanFileError, SavedPlan};

/// How often a wait for the host lock checks it again.
const LOCK_POLL: Duration = Duration::from_millis(500);

/// Run `apply`; returns the exit code (0, or 1 when some deletions failed).
pub async fn run(config_arg: &ConfigArg, args: &ApplyArgs) -> Result<i32, CmdError> {
    let config = load_config(config_arg)?;
    let saved = plan_file::read(&args.file)?;
    let engine = connect(&config).await?;
    let max_age: Duration = args.max_plan_age.into();
    let left = pass::check_plan(&engine, &saved, engine.host(), max_age).await??;
    let lock_path = (args.lock_file.clone()).unwrap_or_else(|| config.agent.lock_file.clone());
    let _lock = if args.no_wait {
        take_lock(lock_path, false).await?
    } else {
        Some(lock_within(lock_path, left, &saved, max_age).await?)
    };
    let limits = ApplyLimits {
        max_age,
        host: engine.host().to_owned(),
    };
    let opts = PassOptions {
        dry_run: false,
        progress: args.output == Output::Text
            && std::io::IsTerminal::is_terminal(&std::io::stderr()),
        builds: Some(Coordination {
            config: config.builds.clone(),
            wait: !args.no_wait,
        }),
        require_disk: false,
    };
    let (stop, watcher) = stop_on_ctrl_c();
    let report = pass::apply(&engine, saved, &config, &limits, &opts, &stop).await;
    watcher.abort();
    let report = report?;
    print(&report, args.output, run_shows(args.output))?;
    exit_code(&report)
}

/// Wait for the host lock at most as long as the plan may still wait (`left` before it is
/// older than `max_age`): a plan that grows too old behind the lock is refused, nothing
/// deleted. Any other lock error stops the command too (exit 5).
async fn lock_within(
    path: PathBuf,
    left: Duration,
    saved: &SavedPlan,
    max_age: Duration,
) -> Result<HostLock, CmdError> {
    let give_up = CancellationToken::new();
    let timer = {
        let give_up = give_up.clone();
        tokio::spawn(async move {
            tokio::time::sleep(left).await;
            give_up.cancel();
        })
    };
    let taken = HostLock::acquire_polling(&path, LOCK_POLL, &give_up, |busy| {
        tracing::info!(%busy, "waiting for the host lock (at most until the plan is too old)");
    })
    .await;
    timer.abort();
    match taken {
        Ok(lock) => Ok(lock),
        Err(LockError::Cancelled { .. }) => Err(CmdError::PlanFile(PlanFileError::TooOld {
            planned_at: saved.planned_at,
            age: max_age,
            max: max_age,
        })),
        Err(e) => Err(CmdError::Other(e.into())),
    }
}
