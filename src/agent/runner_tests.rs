//! The loop under paused tokio time, against a fake backend.

use std::path::PathBuf;
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use tokio::sync::oneshot;

use super::*;
use crate::agent::clock::TokioClock;
use crate::agent::reload::Reloader;
use crate::agent::ticks::Ticker;
use crate::config::{
    AgentConfig, BuildsConfig, ConfigError, DockerConfig, MetricsConfig, Problem, Protect,
    schedule::Schedule,
};
use crate::engine::EngineError;
use crate::execute::Summary;
use crate::pass::PassError;

const T0: &str = "2026-03-01T00:00:30Z";

fn t(s: &str) -> DateTime<Utc> {
    s.parse().expect("test timestamp")
}

fn config(run_on_start: bool) -> Config {
    Config {
        docker: DockerConfig::default(),
        protect: Protect::default(),
        policies: Vec::new(),
        build_cache: Vec::new(),
        agent: AgentConfig {
            schedule: Schedule::parse("@hourly").expect("valid schedule"),
            timezone: chrono_tz::UTC,
            jitter: Duration::ZERO,
            run_on_start,
            lock_file: PathBuf::from("unused.lock"),
            shutdown_timeout: Duration::from_secs(30),
        },
        metrics: MetricsConfig {
            enabled: false,
            listen: "127.0.0.1:0".parse().expect("addr"),
            group_by: None,
            groups: 10,
        },
        builds: BuildsConfig::default(),
        history: crate::config::HistoryConfig::default(),
        disk: None,
    }
}

/// Ticks at every multiple of `0` seconds since the epoch.
struct Every(i64);

impl Ticker for Every {
    fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        DateTime::from_timestamp(after.timestamp().div_euclid(self.0) * self.0 + self.0, 0)
    }
}

fn every(secs: i64) -> TickerFactory {
    Arc::new(move |_: &Config| Arc::new(Every(secs)) as Arc<dyn Ticker>)
}

#[derive(Default)]
struct World {
    up: bool,
    /// Deletions per pass, each taking `deletion_time`.
    deletions: usize,
    deletion_time: Duration,
    pass_starts: Vec<DateTime<Utc>>,
    probes: Vec<DateTime<Utc>>,
    deletions_started: usize,
    concurrency_seen: Vec<usize>,
    /// The engine answers pings, but listing the inventory times out after this long.
    listing_times_out: Option<Duration>,
    /// Passes end over `disk.high` with nothing left to evict.
    stuck: bool,
    /// The `disk.high` each pass planned with.
    highs_seen: Vec<Option<u8>>,
}

#[derive(Clone)]
struct Fake(Arc<Mutex<World>>, TokioClock);

impl Fake {
    /// Must be made before time moves: its clock reads T0 at tokio's start.
    fn new(up: bool, deletions: usize, deletion_time: Duration) -> Self {
        let world = World {
            up,
            deletions,
            deletion_time,
            ..World::default()
        };
        Fake(Arc::new(Mutex::new(world)), TokioClock::starting_at(t(T0)))
    }
    fn with<T>(&self, f: impl FnOnce(&mut World) -> T) -> T {
        f(&mut self.0.lock().expect("world lock"))
    }
}

fn down() -> EngineError {
    EngineError::Unreachable {
        host: "unix:///fake.sock".into(),
        cause: "connection refused".into(),
        hint: "is docker running?".into(),
    }
}

impl Backend for Fake {
    async fn probe(&self, _config: &Config) -> Result<String, EngineError> {
        let now = self.1.now();
        self.with(|w| {
            w.probes.push(now);
            if w.up {
                Ok("fake".to_owned())
            } else {
                Err(down())
            }
        })
    }

    async fn pass(
        &self,
        config: &Config,
        clock: &dyn Clock,
        stop: &CancellationToken,
    ) -> Result<Summary, PassError> {
        let (up, n, each, times_out, stuck) = self.with(|w| {
            w.pass_starts.push(clock.now());
            w.concurrency_seen.push(config.docker.concurrency);
            w.highs_seen
                .push(config.disk.as_ref().map(|d| d.space.high));
            let stuck = w.stuck;
            (
                w.up,
                w.deletions,
                w.deletion_time,
                w.listing_times_out,
                stuck,
            )
        });
        if !up {
            return Err(down().into());
        }
        if let Some(after) = times_out {
            tokio::time::sleep(after).await;
            return Err(EngineError::Timeout {
                host: "unix:///fake.sock".into(),
                seconds: after.as_secs(),
                what: "list images".into(),
            }
            .into());
        }
        let mut s = Summary {
            disk_pressure_stuck: stuck,
            ..Summary::default()
        };
        for _ in 0..n {
            if stop.is_cancelled() {
                s.not_attempted += 1;
                continue;
            }
            self.with(|w| w.deletions_started += 1);
            tokio::time::sleep(each).await;
            s.deleted += 1;
            s.deleted += 1;
        }
        Ok(s)
    }
}

struct Running {
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Stopped>,
    telemetry: Arc<Telemetry>,
}

fn start(fake: &Fake, rx: watch::Receiver<Arc<Config>>, tickers: TickerFactory) -> Running {
    let telemetry = Arc::new(Telemetry::new());
    let clock = TokioClock::starting_at(t(T0));
    let agent = Agent::new(fake.clone(), clock, rx, tickers, Arc::clone(&telemetry));
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(agent.with_seed(1).run(async move {
        let _ = stopped.await;
    }));
    Running {
        stop,
        task,
        telemetry,
    }
}

fn start_simple(
    fake: &Fake,
    config: Config,
    tickers: TickerFactory,
) -> (Running, watch::Sender<Arc<Config>>) {
    let (tx, rx) = watch::channel(Arc::new(config));
    (start(fake, rx, tickers), tx)
}

async fn finish(r: Running) -> Stopped {
    let _ = r.stop.send(());
    r.task.await.expect("agent task")
}

fn offsets(times: &[DateTime<Utc>]) -> Vec<i64> {
    times.iter().map(|x| (*x - t(T0)).num_seconds()).collect()
}

fn metric(telemetry: &Telemetry, line_start: &str) -> Option<String> {
    telemetry
        .metrics
        .encode()
        .lines()
        .find(|l| l.starts_with(line_start))
        .map(|l| l.rsplit(' ').next().unwrap_or_default().to_owned())
}

#[tokio::test(start_paused = true)]
async fn ticks_fire_at_the_schedule_times() {
    let fake = Fake::new(true, 1, Duration::from_secs(1));
    let (run, _tx) = start_simple(&fake, config(false), every(60));
    tokio::time::sleep(Duration::from_secs(200)).await;
    assert_eq!(finish(run).await, Stopped::Clean);
    // T0 is hh:00:30; ticks at :01:00, :02:00, :03:00.
    assert_eq!(
        offsets(&fake.with(|w| w.pass_starts.clone())),
        [30, 90, 150]
    );
}

#[tokio::test(start_paused = true)]
async fn run_on_start_runs_a_pass_at_once() {
    let fake = Fake::new(true, 0, Duration::ZERO);
    let (run, _tx) = start_simple(&fake, config(true), every(60));
    tokio::time::sleep(Duration::from_secs(40)).await;
    finish(run).await;
    assert_eq!(offsets(&fake.with(|w| w.pass_starts.clone())), [0, 30]);
}

#[tokio::test(start_paused = true)]
async fn a_slow_pass_makes_the_next_tick_skipped_and_counted() {
    // 3 deletions of 30s: a pass lasts 90s, longer than the 60s period.
    let fake = Fake::new(true, 3, Duration::from_secs(30));
    let (run, _tx) = start_simple(&fake, config(false), every(60));
    tokio::time::sleep(Duration::from_secs(200)).await;
    let telemetry = Arc::clone(&run.telemetry);
    finish(run).await;
    // Pass at 30 runs to 120; the tick at 90 is skipped; the next pass starts at 150.
    assert_eq!(offsets(&fake.with(|w| w.pass_starts.clone())), [30, 150]);
    assert_eq!(
        metric(
            &telemetry,
            "stagesweep_ticks_skipped_total{reason=\"pass_running\"}"
        )
        .as_deref(),
        Some("1")
    );
}

#[tokio::test(start_paused = true)]
async fn backoff_grows_caps_and_recovers_then_runs_the_pending_pass() {
    let fake = Fake::new(false, 0, Duration::ZERO);
    let (run, _tx) = start_simple(&fake, config(true), every(3600));
    tokio::time::sleep(Duration::from_secs(250)).await;
    let health = run.telemetry.health().expect_err("docker is down");
    assert!(health.starts_with("docker unreachable"), "{health}");
    fake.with(|w| w.up = true);
    tokio::time::sleep(Duration::from_secs(61)).await;
    assert_eq!(run.telemetry.health(), Ok(()));
    let telemetry = Arc::clone(&run.telemetry);
    finish(run).await;
    let probes = offsets(&fake.with(|w| w.probes.clone()));
    let gaps: Vec<i64> = probes.windows(2).map(|w| w[1] - w[0]).collect();
    assert_eq!(
        gaps[..8],
        [1, 2, 4, 8, 16, 32, 60, 60],
        "probes at {probes:?}"
    );
    // Down from 0 to 250: probes at 0,1,3,7,15,31,63,123,183,243, then 303 answers.
    assert_eq!(probes[..11], [0, 1, 3, 7, 15, 31, 63, 123, 183, 243, 303]);
    // The start-up pass ran once docker answered, and counted as a success.
    assert_eq!(offsets(&fake.with(|w| w.pass_starts.clone())), [303]);
    let ok = metric(&telemetry, "stagesweep_passes_total{result=\"success\"}");
    assert_eq!(ok.as_deref(), Some("1"));
}

#[tokio::test(start_paused = true)]
async fn docker_going_away_mid_run_is_survived_and_skipped_ticks_are_caught_up() {
    let fake = Fake::new(true, 0, Duration::ZERO);
    let (run, _tx) = start_simple(&fake, config(true), every(60));
    tokio::time::sleep(Duration::from_secs(45)).await;
    fake.with(|w| w.up = false);
    // Down through the tick at 90 (found by the probe at 60 at the latest).
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert!(run.telemetry.health().is_err());
    fake.with(|w| w.up = true);
    tokio::time::sleep(Duration::from_secs(40)).await;
    assert_eq!(run.telemetry.health(), Ok(()));
    let telemetry = Arc::clone(&run.telemetry);
    finish(run).await;
    let passes = offsets(&fake.with(|w| w.pass_starts.clone()));
    // Start pass at 0, scheduled at 30; the 90 tick is skipped; a catch-up pass runs on
    // recovery (between 105 and 145).
    assert_eq!(passes[..2], [0, 30]);
    assert_eq!(passes.len(), 3, "passes at {passes:?}");
    assert!((105..=145).contains(&passes[2]), "passes at {passes:?}");
    assert_eq!(
        metric(
            &telemetry,
            "stagesweep_ticks_skipped_total{reason=\"docker_unreachable\"}"
        )
        .as_deref(),
        Some("1")
    );
}

#[tokio::test(start_paused = true)]
async fn the_loop_stays_live_through_long_passes_outages_and_idle_hours() {
    // A 20-minute pass (2 deletions of 10 minutes), then docker away for 10 minutes, then
    // idle: /livez never fails, whatever /healthz says.
    let fake = Fake::new(true, 2, Duration::from_secs(600));
    let (run, _tx) = start_simple(&fake, config(true), every(7200));
    for minute in 0..60 {
        if minute == 25 {
            fake.with(|w| w.up = false);
        }
        if minute == 35 {
            fake.with(|w| w.up = true);
        }
        tokio::time::sleep(Duration::from_secs(60)).await;
        assert_eq!(run.telemetry.liveness(), Ok(()), "minute {minute}");
    }
    finish(run).await;
}

#[tokio::test(start_paused = true)]
async fn shutdown_mid_pass_starts_no_new_deletion_and_returns_within_the_timeout() {
    // 10 deletions of 5s each; stop 12s into the pass.
    let fake = Fake::new(true, 10, Duration::from_secs(5));
    let (run, _tx) = start_simple(&fake, config(true), every(3600));
    tokio::time::sleep(Duration::from_secs(12)).await;
    let asked = tokio::time::Instant::now();
    assert_eq!(finish(run).await, Stopped::Clean);
    // Deletions started at 0, 5 and 10; the one in flight finishes at 15; none after.
    assert_eq!(asked.elapsed(), Duration::from_secs(3));
    assert_eq!(fake.with(|w| w.deletions_started), 3);
}

#[tokio::test(start_paused = true)]
async fn shutdown_gives_up_on_in_flight_work_after_the_timeout() {
    let fake = Fake::new(true, 1, Duration::from_secs(3600));
    let mut cfg = config(true);
    cfg.agent.shutdown_timeout = Duration::from_secs(7);
    let (run, _tx) = start_simple(&fake, cfg, every(7200));
    tokio::time::sleep(Duration::from_secs(10)).await;
    let asked = tokio::time::Instant::now();
    assert_eq!(finish(run).await, Stopped::TimedOut);
    assert_eq!(asked.elapsed(), Duration::from_secs(7));
}

#[tokio::test(start_paused = true)]
async fn reload_with_a_bad_config_keeps_the_old_one_and_a_good_one_applies_next_pass() {
    let fake = Fake::new(true, 0, Duration::ZERO);
    let next: Arc<Mutex<Result<usize, ()>>> = Arc::new(Mutex::new(Err(())));
    let load = {
        let next = Arc::clone(&next);
        Box::new(move |path: &std::path::Path| {
            let wanted = *next.lock().expect("next");
            wanted
                .map(|concurrency| {
                    let mut c = config(false);
                    c.docker.concurrency = concurrency;
                    c
                })
                .map_err(|()| ConfigError {
                    problems: vec![Problem {
                        location: format!("{}:3:14", path.display()),
                        path: "policies[0].min_age".into(),
                        message: "invalid duration \"soon\"".into(),
                        hint: Some("use e.g. 1h".into()),
                    }],
                })
        })
    };
    let telemetry = Arc::new(Telemetry::new());
    let (reloader, rx) = Reloader::new(
        "cfg.yaml".into(),
        config(false),
        load,
        Arc::clone(&telemetry),
    );
    let run = start(&fake, rx, every(60));
    tokio::time::sleep(Duration::from_secs(40)).await; // pass at 30
    let err = reloader.reload().expect_err("bad config");
    assert!(
        err.to_string()
            .starts_with("cfg.yaml:3:14: policies[0].min_age"),
        "{err}"
    );
    assert_eq!(reloader.current().docker.concurrency, 4);
    tokio::time::sleep(Duration::from_secs(60)).await; // pass at 90, old config
    *next.lock().expect("next") = Ok(9);
    reloader.reload().expect("good config");
    tokio::time::sleep(Duration::from_secs(60)).await; // pass at 150, new config
    finish(run).await;
    assert_eq!(fake.with(|w| w.concurrency_seen.clone()), [4, 4, 9]);
    let reloads = telemetry.metrics.encode();
    assert!(
        reloads.contains("stagesweep_config_reloads_total{result=\"failure\"} 1"),
        "{reloads}"
    );
    assert!(
        reloads.contains("stagesweep_config_reloads_total{result=\"success\"} 1"),
        "{reloads}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_listing_that_times_out_backs_off_instead_of_relisting_at_once() {
    let fake = Fake::new(true, 0, Duration::ZERO);
    fake.with(|w| w.listing_times_out = Some(Duration::from_secs(10)));
    let (run, _tx) = start_simple(&fake, config(true), every(3600));
    tokio::time::sleep(Duration::from_secs(300)).await;
    finish(run).await;
    let starts = offsets(&fake.with(|w| w.pass_starts.clone()));
    let gaps: Vec<i64> = starts.windows(2).map(|w| w[1] - w[0]).collect();
    // Each attempt takes 10s to time out, then the backoff grows: 1s, 2s, 4s, … (the pings in
    // between answer at once, so without the backoff the passes would follow back to back).
    assert_eq!(gaps[..6], [11, 12, 14, 18, 26, 42], "passes at {starts:?}");
    assert!(starts.len() < 12, "passes at {starts:?}");
}

/// Pass start times over 400s of `@every 60s` with a 50s jitter, with the configuration
/// reloaded at `reloads` (seconds after start) into one with `concurrency` 7.
async fn pass_starts_with_reloads(reloads: &[u64], jitter: Duration) -> Vec<i64> {
    let fake = Fake::new(true, 0, Duration::ZERO);
    let mut initial = config(false);
    initial.agent.jitter = Duration::from_secs(50);
    let load: crate::agent::LoadFn = {
        let initial = initial.clone();
        Box::new(move |_: &std::path::Path| {
            let mut c = initial.clone();
            c.docker.concurrency = 7;
            c.agent.jitter = jitter;
            Ok(c)
        })
    };
    let telemetry = Arc::new(Telemetry::new());
    let (reloader, rx) = Reloader::new("cfg.yaml".into(), initial, load, telemetry);
    let run = start(&fake, rx, every(60));
    let mut at = 0;
    for &r in reloads {
        tokio::time::sleep(Duration::from_secs(r - at)).await;
        reloader.reload().expect("valid");
        at = r;
    }
    tokio::time::sleep(Duration::from_secs(400 - at)).await;
    finish(run).await;
    offsets(&fake.with(|w| w.pass_starts.clone()))
}

#[tokio::test(start_paused = true)]
async fn a_reload_that_leaves_the_schedule_alone_keeps_the_planned_ticks() {
    let undisturbed = pass_starts_with_reloads(&[], Duration::from_secs(50)).await;
    assert!(undisturbed.len() >= 5, "{undisturbed:?}");
    let reloaded = pass_starts_with_reloads(&[10, 95, 200], Duration::from_secs(50)).await;
    assert_eq!(
        reloaded, undisturbed,
        "same seed, same schedule: same ticks"
    );
    // A reload that does change the schedule (here the jitter) re-plans at once.
    let replanned = pass_starts_with_reloads(&[10], Duration::ZERO).await;
    assert_eq!(replanned[..3], [30, 90, 150], "no jitter after the reload");
}

#[tokio::test(start_paused = true)]
async fn early_passes_back_off_while_pressure_persists_with_nothing_to_evict() {
    let fake = Fake::new(true, 0, Duration::ZERO);
    fake.with(|w| w.stuck = true);
    let mut cfg = config(false);
    let check = Duration::from_secs(2);
    cfg.disk = Some(crate::config::DiskConfig {
        space: crate::config::Watermarks { high: 85, low: 80 },
        inodes: None,
        path: None,
        containerd_root: None,
        measure: crate::config::Measure::Statvfs,
        check_every: Some(check),
        forecast: crate::config::ForecastConfig::default(),
    });
    let (tx, rx) = watch::channel(Arc::new(cfg));
    let telemetry = Arc::new(Telemetry::new());
    let wake = Arc::new(tokio::sync::Notify::new());
    let agent = Agent::new(
        fake.clone(),
        TokioClock::starting_at(t(T0)),
        rx,
        every(3600),
        Arc::clone(&telemetry),
    )
    .with_wake(Arc::clone(&wake));
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(agent.with_seed(1).run(async move {
        let _ = stopped.await;
    }));
    // The disk checker: over high at every check.
    let checker = tokio::spawn(async move {
        loop {
            tokio::time::sleep(check).await;
            wake.notify_one();
        }
    });
    tokio::time::sleep(Duration::from_secs(61)).await;
    // Checks every 2 s; passes after waits of 4, 8, 16 s: at 2, 6, 14, 30 — not 30 passes.
    assert_eq!(
        offsets(&fake.with(|w| w.pass_starts.clone())),
        [2, 6, 14, 30]
    );
    assert_eq!(
        metric(&telemetry, "stagesweep_disk_pressure_stuck").as_deref(),
        Some("1")
    );
    // The next early pass (due at 62) relieves the disk: early passes follow the checks again.
    fake.with(|w| w.stuck = false);
    tokio::time::sleep(Duration::from_secs(8)).await;
    assert_eq!(
        offsets(&fake.with(|w| w.pass_starts.clone())),
        [2, 6, 14, 30, 62, 64, 66, 68]
    );
    assert_eq!(
        metric(&telemetry, "stagesweep_disk_pressure_stuck").as_deref(),
        Some("0")
    );
    checker.abort();
    let _ = stop.send(());
    task.await.expect("agent task");
    drop(tx);
}

#[tokio::test(start_paused = true)]
async fn forecast_passes_plan_with_high_lowered_and_back_off_like_other_early_passes() {
    use crate::agent::forecast::{Due, Resource};
    use crate::agent::trigger::Forecasts;
    let fake = Fake::new(true, 0, Duration::ZERO);
    fake.with(|w| w.stuck = true);
    let mut cfg = config(false);
    let check = Duration::from_secs(2);
    cfg.disk = Some(crate::config::DiskConfig {
        space: crate::config::Watermarks { high: 85, low: 80 },
        inodes: None,
        path: None,
        containerd_root: None,
        measure: crate::config::Measure::Statvfs,
        check_every: Some(check),
        forecast: crate::config::ForecastConfig::default(),
    });
    let (tx, rx) = watch::channel(Arc::new(cfg));
    let telemetry = Arc::new(Telemetry::new());
    let wake = Arc::new(tokio::sync::Notify::new());
    let forecasts = Arc::new(Forecasts::default());
    let agent = Agent::new(
        fake.clone(),
        TokioClock::starting_at(t(T0)),
        rx,
        every(3600),
        Arc::clone(&telemetry),
    )
    .with_wake(Arc::clone(&wake))
    .with_forecasts(Arc::clone(&forecasts));
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(agent.with_seed(1).run(async move {
        let _ = stopped.await;
    }));
    // The disk checker: high forecast within the next check, at every check.
    let checker = tokio::spawn(async move {
        loop {
            tokio::time::sleep(check).await;
            forecasts.set(Some(Due {
                resource: Resource::Space,
                eta: Duration::from_secs(1),
                high: 83,
            }));
            wake.notify_one();
        }
    });
    tokio::time::sleep(Duration::from_secs(31)).await;
    // The same back-off as passes over high: at 2, 6, 14, 30 — not 15 passes.
    assert_eq!(
        offsets(&fake.with(|w| w.pass_starts.clone())),
        [2, 6, 14, 30]
    );
    assert_eq!(fake.with(|w| w.highs_seen.clone()), [Some(83); 4]);
    let text = telemetry
        .metrics
        .encode_as(crate::agent::exposition::Format::Text);
    assert!(
        text.contains("stagesweep_forecast_passes_total 4\n"),
        "{text}"
    );
    checker.abort();
    let _ = stop.send(());
    task.await.expect("agent task");
    drop(tx);
}
