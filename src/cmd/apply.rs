//! `stagesweep apply FILE`: delete exactly what a reviewed plan file lists, under the host
//! lock, after checking that it was made for this engine and recently enough.

use std::time::Instant;

use super::prune::{exit_code, print, stop_on_ctrl_c, take_lock};
use super::{CmdError, load_config};
use crate::apply;
use crate::cache::{self, CacheReport};
use crate::cli::{ApplyArgs, ConfigArg};
use crate::engine::Engine;
use crate::engine::docker;
use crate::pass::{PassOptions, PassReport, execute_plan, summarize};

/// Run `apply`; returns the exit code (0, or 1 when some deletions failed).
pub async fn run(config_arg: &ConfigArg, args: &ApplyArgs) -> Result<i32, CmdError> {
    let config = load_config(config_arg)?;
    let saved = apply::read(&args.file)?;
    let engine = docker::connect(&config.docker).await?;
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
    };
    let started = Instant::now();
    let (stop, watcher) = stop_on_ctrl_c();
    let images = &saved.inventory.images;
    let concurrency = config.docker.concurrency;
    let results = execute_plan(&engine, &saved.plan, images, concurrency, &opts, &stop).await;
    let records = saved.cache.records;
    let cache_run = if saved.cache.plan.deletions.is_empty() {
        cache::CacheExecution::default()
    } else {
        Box::pin(cache::execute(&engine, &saved.cache.plan, &records, &stop)).await
    };
    watcher.abort();
    let mut summary = summarize(&saved.plan, &results, false, started.elapsed());
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
    };
    print(&report, args.output, false)?;
    Ok(exit_code(&report))
}
