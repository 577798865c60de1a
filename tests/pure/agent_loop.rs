//! The agent loop over the real pass (`run_pass`) and [`EngineBackend`], with a tiny
//! in-test engine and paused tokio time: start-up before docker exists, reconnecting after
//! the engine goes away, and re-connecting when a reload changes `docker:`.

use crate::support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_util::StreamExt as _;
use stagesweep::agent::{
    Agent, Connector, EngineBackend, Reloader, Telemetry, TokioClock, schedule_tickers,
};
use stagesweep::config::{self, Config, DockerConfig};
use stagesweep::engine::{
    CachePrune, CachePruneReport, DataUsage, Engine, EngineError, EngineInfo, EventStream,
    ImageState, RemoveReport,
};
use stagesweep::inventory::CacheRecord;
use stagesweep::inventory::{Container, Image, Labels};
use support::passes;
use tokio::sync::oneshot;

const T0: &str = "2026-03-01T00:00:30Z";

/// What the tiny daemon holds, shared by every engine made for it.
#[derive(Default)]
struct Daemon {
    up: bool,
    images: Vec<Image>,
    removed: Vec<String>,
    cache: Vec<CacheRecord>,
    /// `docker.host` of every successful connect.
    connects: Vec<Option<String>>,
}

type Shared = Arc<Mutex<Daemon>>;

struct TinyEngine(Shared);

fn gone() -> EngineError {
    EngineError::Unreachable {
        host: "tiny".into(),
        cause: "connection refused".into(),
        hint: "start it".into(),
    }
}

impl TinyEngine {
    fn up(&self) -> Result<(), EngineError> {
        if self.0.lock().expect("daemon").up {
            Ok(())
        } else {
            Err(gone())
        }
    }
}

impl Engine for TinyEngine {
    fn deletes_parents(&self) -> bool {
        false
    }
    fn refuses_parents_with_children(&self) -> bool {
        true
    }
    async fn ping(&self) -> Result<(), EngineError> {
        self.up()
    }
    async fn list_images(&self) -> Result<Vec<Image>, EngineError> {
        self.up()?;
        Ok(self.0.lock().expect("daemon").images.clone())
    }
    async fn info(&self) -> Result<EngineInfo, EngineError> {
        self.up()?;
        Ok(EngineInfo {
            id: "TINY".into(),
            ..EngineInfo::default()
        })
    }
    async fn inspect_image(&self, name: &str) -> Result<ImageState, EngineError> {
        self.up()?;
        let d = self.0.lock().expect("daemon");
        let image = d.images.iter().find(|i| i.id == *name);
        image
            .map(|i| ImageState {
                id: i.id,
                references: i.references.clone(),
                digests: i.digests.clone(),
                created: Some(i.created),
                last_tagged: i.last_tagged,
            })
            .ok_or_else(|| EngineError::NotFound(name.to_owned()))
    }
    async fn list_containers(&self) -> Result<Vec<Container>, EngineError> {
        self.up()?;
        Ok(Vec::new())
    }
    async fn remove_image(&self, name: &str) -> Result<RemoveReport, EngineError> {
        self.up()?;
        let mut d = self.0.lock().expect("daemon");
        let before = d.images.len();
        d.images.retain(|i| i.id != *name);
        if d.images.len() == before {
            return Err(EngineError::NotFound(name.to_owned()));
        }
        d.removed.push(name.to_owned());
        Ok(RemoveReport {
            untagged: Vec::new(),
            deleted: vec![name.to_owned()],
        })
    }
    fn events(&self, _since: Option<i64>, _until: Option<i64>) -> EventStream {
        // No events: the loop's passes reconcile from the listing alone.
        futures_util::stream::empty().boxed()
    }

    async fn data_usage(&self) -> Result<DataUsage, EngineError> {
        self.up()?;
        let d = self.0.lock().expect("daemon");
        Ok(DataUsage {
            shared_sizes: Vec::new(),
            build_cache: Some(d.cache.clone()),
            layers_size: None,
        })
    }
    async fn prune_build_cache(
        &self,
        request: &CachePrune,
    ) -> Result<CachePruneReport, EngineError> {
        self.up()?;
        let mut d = self.0.lock().expect("daemon");
        let mut report = CachePruneReport::default();
        for r in (d.cache.iter()).filter(|r| request.ids.contains(&r.id) && !r.in_use) {
            report.deleted.push(r.id.clone());
            report.reclaimed_bytes += r.size;
        }
        d.cache.retain(|r| !report.deleted.contains(&r.id));
        Ok(report)
    }
    fn describe(&self) -> String {
        "tiny engine".into()
    }
}

/// Connecting fails while the daemon is down, like `docker::connect` (version negotiation).
struct TinyConnector(Shared);

impl Connector for TinyConnector {
    type Engine = TinyEngine;
    async fn connect(&self, docker: &DockerConfig) -> Result<TinyEngine, EngineError> {
        let mut d = self.0.lock().expect("daemon");
        if !d.up {
            return Err(gone());
        }
        d.connects.push(docker.host.clone());
        Ok(TinyEngine(Arc::clone(&self.0)))
    }
}

fn t(s: &str) -> DateTime<Utc> {
    s.parse().expect("timestamp")
}

fn old_image(n: u8) -> Image {
    Image {
        id: format!("sha256:{n:064x}").parse().expect("a valid ID"),
        parent_id: None,
        references: Vec::new(),
        digests: Vec::new(),
        labels: Labels::from([("stage".to_owned(), "builder".to_owned())]),
        created: t(T0) - chrono::Duration::days(2),
        last_tagged: None,
        size: 1000,
        shared_size: None,
    }
}

/// The agent's config; its locks next to `lock`, never the host's (the tests of this crate
/// run at once, and one's deletions under the build lock would defer another's pass).
fn config_text(lock: &std::path::Path, host: &str) -> String {
    format!(
        "docker:\n  host: {host}\npolicies:\n  - name: builders\n    match:\n      labels: [stage=builder]\n    min_age: 1h\n\
         schedule: \"@every 10s\"\nrun_on_start: true\nlock_file: {}\nbuilds:\n  lock_file: {}.builds\n\
         history:\n  enabled: false\nmetrics:\n  enabled: false\n",
        lock.display(),
        lock.display()
    )
}

struct Run {
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
    telemetry: Arc<Telemetry>,
}

fn start(
    daemon: &Shared,
    rx: tokio::sync::watch::Receiver<Arc<Config>>,
    telemetry: Arc<Telemetry>,
) -> Run {
    let backend = EngineBackend::new(TinyConnector(Arc::clone(daemon)));
    let agent = Agent::new(
        backend,
        TokioClock::starting_at(t(T0)),
        rx,
        schedule_tickers(),
        Arc::clone(&telemetry),
    );
    let (stop, stopped) = oneshot::channel::<()>();
    let local = tokio::task::spawn_local(async move {
        agent
            .run(async move {
                let _ = stopped.await;
            })
            .await;
    });
    Run {
        stop,
        task: local,
        telemetry,
    }
}

async fn finish(run: Run) {
    let _ = run.stop.send(());
    run.task.await.expect("agent task");
}

fn shared(up: bool, images: Vec<Image>) -> Shared {
    Arc::new(Mutex::new(Daemon {
        up,
        images,
        ..Daemon::default()
    }))
}

#[tokio::test(start_paused = true)]
async fn starts_before_docker_exists_and_prunes_once_it_answers() {
    tokio::task::LocalSet::new()
        .run_until(async {
            let dir = tempfile::tempdir().expect("temp dir");
            let daemon = shared(false, vec![old_image(1), old_image(2)]);
            let cfg = passes::config(&config_text(&dir.path().join("l"), "unix:///tiny.sock"));
            let (_tx, rx) = tokio::sync::watch::channel(Arc::new(cfg));
            let run = start(&daemon, rx, Arc::new(Telemetry::new()));
            tokio::time::sleep(Duration::from_secs(20)).await;
            assert!(run.telemetry.health().is_err());
            assert!(daemon.lock().expect("d").removed.is_empty());
            daemon.lock().expect("d").up = true;
            tokio::time::sleep(Duration::from_secs(20)).await;
            assert_eq!(run.telemetry.health(), Ok(()));
            finish(run).await;
            let d = daemon.lock().expect("d");
            assert_eq!(
                d.removed.len(),
                2,
                "both old images pruned by the real pass"
            );
            assert_eq!(d.connects.len(), 1, "one engine built once docker answered");
        })
        .await;
}

#[tokio::test(start_paused = true)]
async fn reconnects_after_the_engine_went_away_and_after_a_reload_changes_docker() {
    tokio::task::LocalSet::new()
        .run_until(async {
            let dir = tempfile::tempdir().expect("temp dir");
            let lock = dir.path().join("l");
            let daemon = shared(true, vec![old_image(1)]);
            let path = dir.path().join("agent.yaml");
            std::fs::write(&path, config_text(&lock, "unix:///a.sock")).expect("write");
            let telemetry = Arc::new(Telemetry::new());
            let (reloader, rx) = Reloader::new(
                path.clone(),
                config::load_file(&path).expect("config"),
                Box::new(config::load_file),
                Arc::clone(&telemetry),
            );
            let run = start(&daemon, rx, telemetry);
            tokio::time::sleep(Duration::from_secs(5)).await;
            daemon.lock().expect("d").up = false;
            tokio::time::sleep(Duration::from_secs(30)).await;
            {
                let mut d = daemon.lock().expect("d");
                d.up = true;
                d.images.push(old_image(2));
            }
            tokio::time::sleep(Duration::from_secs(70)).await;
            assert_eq!(run.telemetry.health(), Ok(()));
            std::fs::write(&path, config_text(&lock, "unix:///b.sock")).expect("write");
            reloader.reload().expect("valid reload");
            daemon.lock().expect("d").images.push(old_image(3));
            tokio::time::sleep(Duration::from_secs(15)).await;
            finish(run).await;
            let d = daemon.lock().expect("d");
            assert_eq!(d.removed, [1, 2, 3].map(|n| old_image(n).id.to_string()));
            let hosts: Vec<&str> = d
                .connects
                .iter()
                .map(|h| h.as_deref().unwrap_or("-"))
                .collect();
            assert_eq!(
                hosts,
                ["unix:///a.sock", "unix:///a.sock", "unix:///b.sock"],
                "re-made after the outage and after the reload"
            );
        })
        .await;
}

fn old_record(id: &str, in_use: bool) -> CacheRecord {
    CacheRecord {
        id: id.to_owned(),
        parents: Vec::new(),
        kind: stagesweep::inventory::CacheType::Regular,
        description: "mount / from exec /bin/sh -c make".to_owned(),
        size: 5_000,
        created: Some(t(T0) - chrono::Duration::days(10)),
        last_used: Some(t(T0) - chrono::Duration::days(9)),
        usage_count: 1,
        shared: false,
        in_use,
    }
}

#[tokio::test(start_paused = true)]
async fn agent_passes_prune_stale_build_cache_and_count_it() {
    tokio::task::LocalSet::new()
        .run_until(async {
            let dir = tempfile::tempdir().expect("temp dir");
            let daemon = shared(true, Vec::new());
            daemon.lock().expect("d").cache =
                vec![old_record("old", false), old_record("busy", true)];
            let text = config_text(&dir.path().join("l"), "unix:///tiny.sock")
                + "build_cache:\n  - name: stale\n    unused_for: 7d\n";
            let (_tx, rx) = tokio::sync::watch::channel(Arc::new(passes::config(&text)));
            let run = start(&daemon, rx, Arc::new(Telemetry::new()));
            tokio::time::sleep(Duration::from_secs(5)).await;
            let metrics = run.telemetry.metrics.encode();
            let status = run.telemetry.status_line();
            finish(run).await;
            let left: Vec<String> = (daemon.lock().expect("d").cache.iter())
                .map(|r| r.id.clone())
                .collect();
            assert_eq!(
                left,
                ["busy"],
                "the stale record went, the in-use one stayed"
            );
            assert!(
                metrics
                    .contains("stagesweep_build_cache_reclaimed_bytes_total{rule=\"stale\"} 5000"),
                "{metrics}"
            );
            assert!(
                metrics.contains("stagesweep_build_cache_bytes 10000"),
                "{metrics}"
            );
            assert!(
                status.contains("build cache deleted 1 (5.0 kB) of 2"),
                "{status}"
            );
        })
        .await;
}

/// A history record of `image`: first seen and last used `days` before `T0`.
fn stale(
    image: &Image,
    days: i64,
) -> (stagesweep::inventory::ImageId, stagesweep::history::Record) {
    let at = (t(T0) - chrono::Duration::days(days)).timestamp();
    (
        image.id,
        stagesweep::history::Record::new(at, stagesweep::history::Source::Event),
    )
}

#[tokio::test(start_paused = true)]
async fn a_pass_waits_for_the_history_to_catch_up_then_counts_a_gap_before_unused_for() {
    use stagesweep::agent::Backend as _;
    use stagesweep::history::History;
    let dir = tempfile::tempdir().expect("temp dir");
    let image = old_image(7);
    let text = config_text(&dir.path().join("l"), "unix:///tiny.sock")
        .replace("    min_age: 1h\n", "    min_age: 1h\n    unused_for: 1d\n")
        .replace(
            "history:\n  enabled: false\n",
            &format!(
                "history:\n  path: {}\n  catch_up: 5s\n",
                dir.path().join("history.json").display()
            ),
        );
    let cfg = passes::config(&text);
    for caught_up in [false, true] {
        let daemon = shared(true, vec![image.clone()]);
        // The agent was down for days: its history says the image was last used 3 days ago,
        // though jobs may have used it since (the events that said so were lost).
        let mut history = History {
            engine_id: "TINY".into(),
            ..History::default()
        };
        history.images.extend([stale(&image, 3)]);
        let history = Arc::new(Mutex::new(history));
        let (tx, rx) = tokio::sync::watch::channel(stagesweep::agent::CatchUp {
            caught_up,
            since: tokio::time::Instant::now(),
        });
        let backend = EngineBackend::new(TinyConnector(Arc::clone(&daemon)))
            .with_history(Some(Arc::clone(&history)), Some(rx));
        let clock = TokioClock::starting_at(t(T0));
        let started = tokio::time::Instant::now();
        let summary = backend
            .pass(&cfg, &clock, &tokio_util::sync::CancellationToken::new())
            .await
            .expect("the pass runs");
        drop(tx);
        if caught_up {
            assert_eq!(summary.deleted, 1, "a caught-up history decides at once");
        } else {
            assert!(
                started.elapsed() >= Duration::from_secs(5),
                "waited history.catch_up"
            );
            assert_eq!(
                summary.deleted, 0,
                "a history that did not catch up counts a gap: assume_used keeps it"
            );
            let r = history.lock().expect("history").images[&image.id];
            assert_eq!(r.last_used_by, stagesweep::history::Source::Gap);
        }
    }
}
