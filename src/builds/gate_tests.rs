//! The gate's retry logic on paused tokio time, with real `flock`s on a temp file.

use std::path::PathBuf;
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::*;
use crate::engine::fake::{build_step, container};

const RETRY: Duration = Duration::from_secs(10);

struct World {
    _dir: tempfile::TempDir,
    lock: PathBuf,
}

fn world() -> World {
    let dir = tempfile::tempdir().expect("temp dir");
    let lock = dir.path().join("builds.lock");
    World { _dir: dir, lock }
}

fn coordination(w: &World, max_defer: Duration, wait: bool, detect: bool) -> Coordination {
    Coordination {
        config: BuildsConfig {
            lock_file: w.lock.clone(),
            lock: true,
            detect,
            retry: RETRY,
            max_defer,
        },
        wait,
    }
}

/// A build holding the lock shared, as `stagesweep hold` or `flock -s` would.
async fn build_holds(w: &World) -> BuildLock {
    BuildLock::shared(&w.lock, Some(Duration::ZERO), Duration::from_millis(1))
        .await
        .expect("the build takes the lock")
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

#[tokio::test(start_paused = true)]
async fn no_build_means_go_with_the_lock_held_while_deleting() {
    let w = world();
    let mut gate = Gate::new(&coordination(&w, secs(60), true, true));
    let Check::Go(Some(lock)) = gate
        .check(&[container("app", "app:1", "running")], 3)
        .unwrap()
    else {
        panic!("nothing is in the way");
    };
    assert!(
        BuildLock::shared(&w.lock, Some(Duration::ZERO), RETRY)
            .await
            .is_err(),
        "a build must wait while deletions run"
    );
    drop(lock);
    let report = gate.finish(GateOutcome::Clear);
    assert_eq!((report.deferrals, report.waited_secs), (0, 0.0));
    assert!(report.builds.is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_held_lock_defers_until_the_build_releases_it() {
    let w = world();
    let build = build_holds(&w).await;
    let mut gate = Gate::new(&coordination(&w, secs(1800), true, false));
    let stop = CancellationToken::new();
    let started = Instant::now();
    assert!(matches!(gate.check(&[], 2).unwrap(), Check::Defer));
    let release = tokio::spawn(async move {
        tokio::time::sleep(secs(35)).await;
        drop(build);
    });
    // Probes at 10, 20, 30 s find the lock held; the one at 40 s finds it free.
    assert_eq!(gate.wait(&stop).await.unwrap(), None);
    assert_eq!(started.elapsed(), secs(40));
    assert!(matches!(gate.check(&[], 2).unwrap(), Check::Go(Some(_))));
    let report = gate.finish(GateOutcome::Clear);
    assert_eq!(report.deferrals, 1);
    assert!((report.waited_secs - 40.0).abs() < 1e-6, "{report:?}");
    assert_eq!(
        report.builds,
        [Build::LockHeld {
            path: w.lock.clone()
        }]
    );
    release.await.expect("release task");
}

#[tokio::test(start_paused = true)]
async fn max_defer_expires_and_the_pass_gives_up() {
    let w = world();
    let _build = build_holds(&w).await;
    let mut gate = Gate::new(&coordination(&w, secs(25), true, true));
    let started = Instant::now();
    assert!(matches!(gate.check(&[], 1).unwrap(), Check::Defer));
    // Probes at 10 and 20 s, the last one at the deadline (25 s), then give up.
    let outcome = gate.wait(&CancellationToken::new()).await.unwrap();
    assert_eq!(outcome, Some(GateOutcome::Expired));
    assert_eq!(started.elapsed(), secs(25));
    let waited = gate.finish(GateOutcome::Expired).waited_secs;
    assert!((waited - 25.0).abs() < 1e-6, "{waited}");
}

#[tokio::test(start_paused = true)]
async fn max_defer_zero_gives_up_at_once() {
    let w = world();
    let _build = build_holds(&w).await;
    let mut gate = Gate::new(&coordination(&w, Duration::ZERO, true, true));
    assert!(matches!(gate.check(&[], 1).unwrap(), Check::Defer));
    let started = Instant::now();
    let outcome = gate.wait(&CancellationToken::new()).await.unwrap();
    assert_eq!(
        (outcome, started.elapsed()),
        (Some(GateOutcome::Expired), Duration::ZERO)
    );
}

#[tokio::test(start_paused = true)]
async fn no_wait_gives_up_at_once_and_stop_ends_the_wait() {
    let w = world();
    let _build = build_holds(&w).await;
    let mut gate = Gate::new(&coordination(&w, secs(1800), false, true));
    assert!(matches!(gate.check(&[], 1).unwrap(), Check::Defer));
    let started = Instant::now();
    let stop = CancellationToken::new();
    assert_eq!(gate.wait(&stop).await.unwrap(), Some(GateOutcome::NoWait));
    assert_eq!(started.elapsed(), Duration::ZERO);

    let mut gate = Gate::new(&coordination(&w, secs(1800), true, true));
    assert!(matches!(gate.check(&[], 1).unwrap(), Check::Defer));
    let canceller = {
        let stop = stop.clone();
        tokio::spawn(async move {
            tokio::time::sleep(secs(15)).await;
            stop.cancel();
        })
    };
    assert_eq!(gate.wait(&stop).await.unwrap(), Some(GateOutcome::Stopped));
    assert_eq!(started.elapsed(), secs(15));
    canceller.await.expect("canceller");
}

#[tokio::test(start_paused = true)]
async fn a_detected_step_defers_until_two_checks_in_a_row_see_none() {
    let w = world();
    let cancel = CancellationToken::new();
    let step = build_step("run", "stage", "running");
    let mut gate = Gate::new(&coordination(&w, secs(1800), true, true));
    assert!(matches!(
        gate.check(std::slice::from_ref(&step), 4).unwrap(),
        Check::Defer
    ));
    assert!(
        !BuildLock::is_held(&w.lock).unwrap(),
        "a deferred check keeps no lock"
    );
    assert_eq!(gate.wait(&cancel).await.unwrap(), None);
    // The step ended; the next step may not have started yet: wait one more interval.
    assert!(matches!(gate.check(&[], 4).unwrap(), Check::Defer));
    assert_eq!(gate.wait(&cancel).await.unwrap(), None);
    assert!(matches!(gate.check(&[], 4).unwrap(), Check::Go(Some(_))));
    let report = gate.finish(GateOutcome::Clear);
    assert_eq!(report.deferrals, 2);
    assert!((report.waited_secs - 20.0).abs() < 1e-6, "{report:?}");
    assert!(matches!(report.builds[..], [Build::ClassicStep { .. }]));
}

#[tokio::test(start_paused = true)]
async fn detection_off_ignores_build_steps() {
    let w = world();
    let mut gate = Gate::new(&coordination(&w, secs(1800), true, false));
    let step = build_step("run", "stage", "running");
    assert!(matches!(
        gate.check(&[step], 1).unwrap(),
        Check::Go(Some(_))
    ));
}

#[tokio::test(start_paused = true)]
async fn without_a_lock_directory_the_gate_fails_closed() {
    let dir = tempfile::tempdir().expect("temp dir");
    let blocker = dir.path().join("file");
    std::fs::write(&blocker, b"x").expect("write");
    let config = BuildsConfig {
        lock_file: blocker.join("run/builds.lock"),
        ..BuildsConfig::default()
    };
    let coordination = Coordination {
        config: config.clone(),
        wait: true,
    };
    let mut gate = Gate::new(&coordination);
    let err = gate.check(&[], 1).expect_err("no lock, no deletions");
    assert!(matches!(err, BuildLockError::CreateDir { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains("nothing was deleted") && text.contains("builds.lock: false"),
        "{text}"
    );
    // The explicit opt-out of a host where nothing builds: no lock, detection still on.
    let coordination = Coordination {
        config: BuildsConfig {
            lock: false,
            ..config
        },
        wait: true,
    };
    let mut gate = Gate::new(&coordination);
    assert!(matches!(gate.check(&[], 1).unwrap(), Check::Go(None)));
    let step = build_step("run", "stage", "running");
    assert!(
        matches!(gate.check(&[step], 1).unwrap(), Check::Defer),
        "detection still works without the lock"
    );
}
