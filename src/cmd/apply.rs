//! `stagesweep apply FILE`: delete exactly what a reviewed plan file lists, under the host
//! lock, after checking that it was made for this engine and recently enough.

use super::cli::{ApplyArgs, ConfigArg, Output};
use super::prune::{exit_code, print, run_shows, stop_on_ctrl_c, take_lock};
use super::{CmdError, connect, load_config};
use crate::builds::Coordination;
use crate::pass::{self, PassOptions};
use crate::plan_file;

/// Run `apply`; returns the exit code (0, or 1 when some deletions failed).
pub async fn run(config_arg: &ConfigArg, args: &ApplyArgs) -> Result<i32, CmdError> {
    let config = load_config(config_arg)?;
    let saved = plan_file::read(&args.file)?;
    let engine = connect(&config).await?;
    pass::check_plan(&engine, &saved, engine.host(), args.max_plan_age.into()).await??;
    let lock_path = (args.lock_file.clone()).unwrap_or_else(|| config.agent.lock_file.clone());
    let _lock = take_lock(lock_path, !args.no_wait).await?;
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
    let report = pass::apply(&engine, saved, &config, &opts, &stop).await;
    watcher.abort();
    let report = report?;
    print(&report, args.output, run_shows(args.output))?;
    exit_code(&report)
}
