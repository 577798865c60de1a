//! The disk forecast of a live agent (`disk.forecast`): a small tmpfs the test mounts
//! (`disk.path`) is filled at a steady rate while the agent checks it every second. Before
//! the fill the fill rate is 0 and the ETA absent; during it `/metrics` gives a fill rate and
//! a time until `high` within 25 % of the truth; with `preempt: true` the agent runs the
//! pressure pass, which evicts the policy's images, before the disk reaches `high`.

use crate::support;

use std::io::Write as _;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use chrono::Utc;
use stagesweep::pass::disk::statvfs;
use support::agent_proc::AgentProc;
use support::daemon::Tmpfs;
use support::fixture::{FixtureImage, load};
use support::{Scope, docker_host};

/// 64 MiB, filled at 2 MiB/s (256 KiB every 125 ms): `high` (80 %) in about 26 s.
const SIZE: &str = "64m";
const CHUNK: usize = 256 << 10;
const EVERY: Duration = Duration::from_millis(125);
const HIGH: u8 = 80;

#[allow(clippy::cast_precision_loss)]
fn rate_bytes_per_sec() -> f64 {
    CHUNK as f64 / EVERY.as_secs_f64()
}

/// Append `CHUNK` to a file under `dir` on a fixed beat (no drift) until `stop`, or until the
/// filesystem is 95 % full.
fn fill(dir: &Path, stop: &AtomicBool) {
    let mut file = std::fs::File::create(dir.join("filler")).expect("create the filler");
    let chunk = vec![0x5a_u8; CHUNK];
    let start = Instant::now();
    for k in 1u32.. {
        if stop.load(Ordering::Relaxed) || used(dir) > 0.95 {
            return;
        }
        file.write_all(&chunk).expect("fill the tmpfs");
        let next = start + EVERY * k;
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
    }
}

/// The filler thread; stopped and joined on drop (before the tmpfs is unmounted, also when
/// the test fails mid-fill: an open file would keep the tmpfs busy).
struct Filler {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Filler {
    fn start(dir: &Path) -> Filler {
        let stop = Arc::new(AtomicBool::new(false));
        let (dir, flag) = (dir.to_owned(), Arc::clone(&stop));
        let thread = std::thread::spawn(move || fill(&dir, &flag));
        Filler {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Filler {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn used(dir: &Path) -> f64 {
    statvfs(dir).expect("statvfs").used_ratio()
}

/// The value of the sample `name` (with its labels, if any) in an exposition.
fn sample(body: &str, name: &str) -> Option<f64> {
    body.lines()
        .find(|l| l.split(' ').next() == Some(name))?
        .rsplit(' ')
        .next()?
        .parse()
        .ok()
}

const ETA: &str = "stagesweep_disk_high_eta_seconds{resource=\"space\"}";
const RATE: &str = "stagesweep_disk_fill_rate_bytes_per_second";

#[tokio::test(flavor = "multi_thread")]
async fn a_steady_fill_is_forecast_within_a_quarter_and_evicted_before_high() {
    let host = docker_host();
    let scope = Scope::new("forecast").await;
    let two_hours_ago = Utc::now() - chrono::Duration::hours(2);
    let ids = load(
        &scope.docker,
        &(0..3)
            .map(|_| FixtureImage::new(&scope.label(), two_hours_ago))
            .collect::<Vec<_>>(),
    )
    .await;
    let fs = Tmpfs::mount(SIZE);
    let config = format!(
        "policies:\n  - name: p\n    match:\n      labels: [\"{}\"]\n    min_age: 0s\n    when: disk_pressure\n\
         disk:\n  path: {}\n  high: {HIGH}\n  low: 50\n  check_every: 1s\n  forecast:\n    window: 6s\n    preempt: true\n\
         schedule: \"@hourly\"\nrun_on_start: true\nlock_file: {{dir}}/run/stagesweep.lock\n\
         metrics:\n  listen: 127.0.0.1:{{port}}\nhistory:\n  enabled: false\n",
        scope.selector(),
        fs.path.display()
    );
    let agent = AgentProc::start(&config, &host);

    // Not filling: a fill rate of 0 once three checks are in, and no ETA.
    let mut body = String::new();
    for _ in 0..100 {
        body = agent.get("/metrics").map(|(_, b)| b).unwrap_or_default();
        if sample(&body, RATE).is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(sample(&body, RATE), Some(0.0), "{body}\n{}", agent.log());
    assert!(
        !body.contains("stagesweep_disk_high_eta_seconds{"),
        "{body}"
    );

    let filler = Filler::start(&fs.path);

    // After 8 s of filling the 6 s window holds only the fill: compare with the truth at the
    // sample the agent took (its used ratio, exported from the same check).
    tokio::time::sleep(Duration::from_secs(8)).await;
    let (_, body) = agent.get("/metrics").expect("/metrics answers");
    let eta = sample(&body, ETA).unwrap_or_else(|| panic!("no ETA while filling:\n{body}"));
    let at = sample(&body, "stagesweep_disk_used_ratio").expect("a used ratio");
    let rate = sample(&body, RATE).expect("a fill rate");
    let capacity = statvfs(&fs.path).expect("statvfs").capacity_bytes;
    #[allow(clippy::cast_precision_loss)]
    let truth = (f64::from(HIGH) / 100.0 - at) * capacity as f64 / rate_bytes_per_sec();
    assert!(
        (eta - truth).abs() <= 0.25 * truth,
        "ETA {eta:.1}s, true time to high {truth:.1}s (used {at:.3})"
    );
    let true_rate = rate_bytes_per_sec();
    assert!(
        (rate - true_rate).abs() <= 0.25 * true_rate,
        "fill rate {rate:.0} B/s, true {true_rate:.0} B/s"
    );

    // With preempt on, the pressure pass runs and evicts before high is reached.
    agent
        .wait_log(
            "evicted a wave under disk pressure",
            1,
            Duration::from_secs(60),
        )
        .await;
    drop(filler);
    let log = agent.log();
    let wave = log
        .lines()
        .find(|l| l.contains("evicted a wave under disk pressure"))
        .expect("waited for it");
    assert!(wave.contains("trigger=\"forecast\""), "{wave}\n{log}");
    let permille: u32 = wave
        .split("used_permille=")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no used_permille in {wave}"));
    assert!(
        permille < u32::from(HIGH) * 10,
        "evicted at {permille}‰, high {HIGH}%:\n{log}"
    );
    assert!(log.contains("forecast: space reaches high in"), "{log}");
    eprintln!(
        "ETA {eta:.1}s vs true {truth:.1}s (used {at:.3}); fill rate {rate:.0} vs {true_rate:.0} B/s; \
         first eviction at {permille}‰, high {HIGH}%"
    );
    assert!(
        !log.contains("disk over high: running a pass early")
            || log.find("disk over high") > log.find("evicted a wave"),
        "the forecast pass came first:\n{log}"
    );
    for id in &ids {
        assert!(
            scope.docker.inspect_image(id).await.is_err(),
            "{id} evicted:\n{log}"
        );
    }
    drop(agent);
    drop(fs);
    scope.cleanup().await;
}
