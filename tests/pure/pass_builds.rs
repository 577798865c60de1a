//! Whole passes against the in-memory engine while builds run: deletions are deferred, the
//! pass re-plans after the wait, gives up after `max_defer`, and honours `--no-wait` and stop.
//! Paused tokio time; the build lock is a real `flock` on a temp file.

use crate::support;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use stagesweep::builds::{Build, Coordination, GateOutcome};
use stagesweep::config::BuildsConfig;
use stagesweep::engine::fake::{FakeEngine, build_step, container, fake_id, image};
use stagesweep::locks::BuildLock;
use stagesweep::pass::{PassOptions, PassReport, run_pass};
use stagesweep::plan::{Action, Reason};
use stagesweep::report;
use support::passes::{builder_policy, now, old_builder};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

const RETRY: Duration = Duration::from_secs(10);

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

struct World {
    _dir: tempfile::TempDir,
    lock: PathBuf,
    engine: Arc<FakeEngine>,
}

fn world(engine: FakeEngine) -> World {
    let dir = tempfile::tempdir().expect("temp dir");
    let lock = dir.path().join("run/builds.lock");
    World {
        _dir: dir,
        lock,
        engine: Arc::new(engine),
    }
}

fn options(w: &World, max_defer: Duration, wait: bool) -> PassOptions {
    PassOptions {
        builds: Some(Coordination {
            config: BuildsConfig {
                lock_file: w.lock.clone(),
                lock: true,
                detect: true,
                retry: RETRY,
                max_defer,
            },
            wait,
        }),
        ..PassOptions::default()
    }
}

async fn build_holds(w: &World) -> BuildLock {
    BuildLock::shared(&w.lock, Some(Duration::ZERO), Duration::from_millis(1))
        .await
        .expect("the build takes the lock")
}

async fn pass(w: &World, opts: &PassOptions, stop: &CancellationToken) -> PassReport {
    run_pass(&*w.engine, &builder_policy("builders"), now(), opts, stop)
        .await
        .expect("pass runs")
}

#[tokio::test(start_paused = true)]
async fn a_held_build_lock_defers_deletions_and_the_pass_replans_after_the_wait() {
    // "young" is 20 s short of min_age at the start; "used" gains a container during the wait.
    let engine = FakeEngine::builder()
        .image(old_builder("a"))
        .image(old_builder("used"))
        .image(
            image("young")
                .label("stage", "builder")
                .age(now(), secs(3600 - 20)),
        )
        .build();
    let w = world(engine);
    let build = build_holds(&w).await;
    let finish_build = {
        let engine = Arc::clone(&w.engine);
        tokio::spawn(async move {
            tokio::time::sleep(secs(25)).await;
            engine.add_container(container("ci", "used", "exited"));
            drop(build);
        })
    };
    let started = Instant::now();
    let r = pass(
        &w,
        &options(&w, secs(1800), true),
        &CancellationToken::new(),
    )
    .await;
    assert_eq!(
        started.elapsed(),
        secs(30),
        "probes at 10, 20 s; free at 30 s"
    );
    finish_build.await.expect("build task");

    let wait = r.builds.as_ref().expect("the pass asked");
    assert_eq!(wait.outcome, GateOutcome::Clear);
    assert_eq!(
        wait.builds,
        [Build::LockHeld {
            path: w.lock.clone()
        }]
    );
    assert_eq!((r.summary.deferred, r.summary.build_deferrals), (0, 1));
    assert_eq!(r.summary.build_wait_secs, Some(30.0));
    // Re-planned after the wait: "used" is now in use, "young" is now old enough.
    let ids: Vec<_> = w.engine.images().into_iter().map(|i| i.id).collect();
    assert_eq!(ids, [fake_id("used")]);
    let used = r.decision_for(fake_id("used")).expect("planned");
    assert!(matches!(used.reason, Reason::InUse { .. }), "{used:?}");
    assert!(report::report_summary_line(&r).contains("after waiting 30s for builds"));
}

#[tokio::test(start_paused = true)]
async fn max_defer_expiry_skips_the_deletions_and_keeps_the_plan() {
    let w = world(
        FakeEngine::builder()
            .image(old_builder("a"))
            .image(old_builder("b"))
            .build(),
    );
    let _build = build_holds(&w).await;
    let started = Instant::now();
    let r = pass(&w, &options(&w, secs(60), true), &CancellationToken::new()).await;
    assert_eq!(started.elapsed(), secs(60));
    assert!(w.engine.calls().is_empty(), "nothing was deleted");
    assert_eq!(w.engine.images().len(), 2);
    assert_eq!(
        r.builds.as_ref().map(|b| b.outcome),
        Some(GateOutcome::Expired)
    );
    assert_eq!(r.plan.with_action(Action::Delete).count(), 2, "plan kept");
    assert_eq!(r.summary.deferred, 2);
    assert!(r.results.is_empty());
    let line = report::report_summary_line(&r);
    assert!(
        line.starts_with("deferred 2 deletions: a build is in progress; deleted nothing")
            && line.ends_with("is held, gave up after 60s (builds.max_defer)"),
        "{line}"
    );
    let json = serde_json::to_value(report::to_json(&r, &report::ALL_ACTIONS)).expect("json");
    assert_eq!(json["builds"]["outcome"], "expired");
    assert_eq!(json["builds"]["builds"][0]["kind"], "lock_held");
    assert_eq!(json["summary"]["deferred"], 2);
    for img in json["images"].as_array().expect("images") {
        assert_eq!(img["outcome"]["kind"], "deferred", "{img}");
        assert_eq!(img["outcome"]["reason"], "build_in_progress", "{img}");
    }
    let text = report::render_text(&r, &[stagesweep::plan::Action::Delete]);
    assert_eq!(
        text.matches("deferred: build in progress").count(),
        2,
        "{text}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_running_classic_build_step_defers_until_two_checks_see_none() {
    let w = world(
        FakeEngine::builder()
            .image(old_builder("a"))
            .image(image("step").age(now(), secs(60)))
            .container(build_step("run", "step", "running"))
            .build(),
    );
    let step_ends = {
        let engine = Arc::clone(&w.engine);
        let step = build_step("run", "step", "running");
        tokio::spawn(async move {
            tokio::time::sleep(secs(15)).await;
            engine.remove_container(&step.id);
        })
    };
    let started = Instant::now();
    let r = pass(
        &w,
        &options(&w, secs(1800), true),
        &CancellationToken::new(),
    )
    .await;
    // Steps seen at 0 and 10 s; none at 20 s, confirmed at 30 s.
    assert_eq!(started.elapsed(), secs(30));
    step_ends.await.expect("step task");
    assert_eq!(r.summary.deleted, 1);
    assert_eq!(r.summary.build_deferrals, 3);
    let wait = r.builds.expect("asked");
    assert!(matches!(wait.builds[..], [Build::ClassicStep { .. }]));
}

#[tokio::test(start_paused = true)]
async fn no_wait_and_stop_give_up_with_nothing_deleted() {
    let w = world(FakeEngine::builder().image(old_builder("a")).build());
    let _build = build_holds(&w).await;
    let started = Instant::now();
    let r = pass(
        &w,
        &options(&w, secs(1800), false),
        &CancellationToken::new(),
    )
    .await;
    assert_eq!(started.elapsed(), Duration::ZERO);
    assert_eq!(r.builds.map(|b| b.outcome), Some(GateOutcome::NoWait));
    assert_eq!(r.summary.deferred, 1);

    let stop = CancellationToken::new();
    let stopper = {
        let stop = stop.clone();
        tokio::spawn(async move {
            tokio::time::sleep(secs(12)).await;
            stop.cancel();
        })
    };
    let r = pass(&w, &options(&w, secs(1800), true), &stop).await;
    stopper.await.expect("stopper");
    assert_eq!(r.builds.map(|b| b.outcome), Some(GateOutcome::Stopped));
    assert!(w.engine.calls().is_empty());
}

#[tokio::test(start_paused = true)]
async fn dry_runs_and_passes_without_deletions_do_not_ask() {
    let w = world(FakeEngine::builder().image(old_builder("a")).build());
    let _build = build_holds(&w).await;
    let dry = PassOptions {
        dry_run: true,
        ..options(&w, secs(1800), true)
    };
    let r = pass(&w, &dry, &CancellationToken::new()).await;
    assert!(r.builds.is_none() && r.summary.build_wait_secs.is_none());
    let nothing = world(FakeEngine::builder().image(image("x")).build());
    let _other = build_holds(&nothing).await;
    let r = pass(
        &nothing,
        &options(&nothing, secs(1800), true),
        &CancellationToken::new(),
    )
    .await;
    assert!(
        r.builds.is_none(),
        "nothing to delete: builds are not asked"
    );
}
