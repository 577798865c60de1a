//! `stagesweep apply FILE`: delete exactly what a reviewed plan file lists, under the host
//! lock, after checking that it was made for this engine and recently enough.

use std::time::Instant;

use super::prune::{exit_code, print, run_shows, stop_on_ctrl_c, take_lock};
use super::{CmdError, connect, load_config};
use crate::apply;
use crate::builds::Coordination;
use crate::cache::{self, CacheReport};
use crate::cli::{ApplyArgs, ConfigArg};
use crate::engine::Engine;
use crate::pass::{PassOptions, PassReport, count_build_wait, summarize};

/// Run `apply`; returns the exit code (0, or 1 when some deletions failed).
pub async fn run(config_arg: &ConfigArg, args: &ApplyArgs) -> Result<i32, CmdError> {
    let config = load_config(config_arg)?;
    let saved = apply::read(&args.file)?;
    let engine = connect(&config).await?;
    let info = engine.info().await?;
    let now = info.system_time.unwrap_or_else(chrono::Utc::now);
    apply::check(
        &saved,
        &info.id,
        engine.host(),
        now,
        args.max_plan_age.into(),
    )?;
    let lock_path = (args.lock_file.clone()).unwrap_or_else(|| config.agent.lock_file.clone());
    let _lock = take_lock(lock_path, !args.no_wait).await?;
    let opts = PassOptions {
        dry_run: false,
        progress: args.output == crate::cli::Output::Text
            && std::io::IsTerminal::is_terminal(&std::io::stderr()),
        builds: Some(Coordination {
            config: config.builds.clone(),
            wait: !args.no_wait,
        }),
    };
    let started = Instant::now();
    let (stop, watcher) = stop_on_ctrl_c();
    let concurrency = config.docker.concurrency;
    let executed = apply::execute(&engine, &saved, concurrency, &opts, &stop).await;
    watcher.abort();
    let (results, builds, engine_lost, cache_run) = executed?;
    let mut summary = summarize(&saved.plan, &results, false, started.elapsed());
    let deletions = saved.plan.deletions.len() + saved.cache.plan.deletions.len();
    count_build_wait(&mut summary, builds.as_ref(), deletions);
    let records = saved.cache.records;
    let cache = CacheReport {
        plan: saved.cache.plan,
        results: cache_run.results,
        notice: cache_run.notice,
    };
    summary.build_cache = cache::summarize(
        &records,
        &cache.plan,
        &cache.results,
        cache.notice.as_deref(),
    );
    let mut inventory = saved.inventory;
    inventory.build_cache = Some(records);
    let report = PassReport {
        engine_id: saved.engine_id,
        planned_at: saved.planned_at,
        inventory,
        plan: saved.plan,
        results,
        cache,
        host_hint: None,
        summary,
        builds,
        engine_lost,
        usage: crate::plan::Usage::default(),
    };
    print(&report, args.output, run_shows(args.output))?;
    exit_code(&report)
}
