//! Reuse-aware eviction on a real engine: the agent counts uses from the engine's events
//! (loads, container creates) into the history file; under pressure, `order: lfu` evicts
//! the image used once (more recently) before the one used five times, `lru` the other way
//! round. A private dockerd, so that `disk.measure: api` (the images' bytes against a budget)
//! sees this test's images only.

use crate::support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use bollard::Docker;
use bollard::models::{ContainerCreateBody, HostConfig};
use bollard::query_parameters::RemoveContainerOptions;
use chrono::Utc;
use serde_json::Value;
use support::agent_proc::AgentProc;
use support::cli::{self, entry};
use support::daemon::OwnDaemon;
use support::docker_host;
use support::fixture::{FixtureImage, load};

const MIB: usize = 1 << 20;

/// Create a container from `image` (a counted use) and remove it (so nothing holds it).
async fn use_once(docker: &Docker, image: &str) {
    let body = ContainerCreateBody {
        image: Some(image.to_owned()),
        cmd: Some(vec!["/bin/true".to_owned()]),
        host_config: Some(HostConfig {
            network_mode: Some("none".to_owned()),
            ..HostConfig::default()
        }),
        ..ContainerCreateBody::default()
    };
    let created = docker
        .create_container(
            None::<bollard::query_parameters::CreateContainerOptions>,
            body,
        )
        .await
        .expect("create a container");
    docker
        .remove_container(&created.id, None::<RemoveContainerOptions>)
        .await
        .expect("remove the container");
}

/// Policies over the test's label, under pressure by `measure: api`: two images of ~1 MiB
/// against a 2.2 MiB budget (~91 %, over high 85 %); low 60 % needs one of them gone.
fn config(dir: &Path, label: &(String, String), order: &str) -> PathBuf {
    let path = dir.join(format!("{order}.yaml"));
    let text = format!(
        "policies:\n  - name: reuse\n    match:\n      labels: [\"{}={}\"]\n    min_age: 1s\n    \
         when: disk_pressure\n    order: {order}\n\
         disk:\n  high: 85\n  low: 60\n  measure: api\n  max_images_bytes: 2200KiB\n\
         schedule: \"@every 1h\"\nrun_on_start: false\nmetrics:\n  enabled: false\n\
         history:\n  path: {d}/state/history.json\n  catch_up: 5s\n\
         lock_file: {d}/run/stagesweep.lock\nbuilds:\n  lock_file: {d}/run/builds.lock\n",
        label.0,
        label.1,
        d = dir.display()
    );
    std::fs::write(&path, text).expect("write config");
    path
}

/// The history file's record of `id` (with `uses`, `uses_at`).
fn record(dir: &Path, id: &str) -> Value {
    let bytes = std::fs::read(dir.join("state/history.json")).expect("the history file");
    let history = stagesweep::history::file::parse(&bytes).expect("a valid history file");
    let id: stagesweep::inventory::ImageId = id.parse().expect("an image ID");
    serde_json::to_value(history.images.get(&id)).expect("records serialize")
}

/// `stagesweep plan --output json` with `config`: the kind of each image's reason.
fn planned(config: &Path, host: &str, ids: &[&str]) -> (Vec<String>, Value) {
    let (code, doc, stderr) = cli::run_json(
        cli::with_config(config)
            .args(["plan", "--output", "json"])
            .env("DOCKER_HOST", host),
    );
    assert_eq!(code, 0, "{stderr}");
    let kinds = (ids.iter())
        .map(|id| {
            entry(&doc, id)["reason"]["kind"]
                .as_str()
                .unwrap_or("")
                .to_owned()
        })
        .collect();
    (kinds, doc)
}

#[tokio::test(flavor = "multi_thread")]
async fn under_pressure_lfu_evicts_the_once_used_image_first_and_lru_the_other() {
    let _shared = docker_host(); // same precondition as the other engine tests
    let daemon = OwnDaemon::start("reuse");
    let (dir, host) = (daemon.base().to_owned(), daemon.host.clone());
    let docker = daemon.client_with_timeout(60).await;
    let label = (
        "stagesweep.test".to_owned(),
        format!("reuse-{}", std::process::id()),
    );
    let lru = config(&dir, &label, "lru");
    let lfu = config(&dir, &label, "lfu");

    // The agent follows the events from the start: every use below is an event it counts.
    let text = std::fs::read_to_string(&lru).expect("read config");
    let agent = AgentProc::start(&text, &host);
    agent
        .wait_log("following docker events", 1, Duration::from_secs(30))
        .await;
    let month_ago = Utc::now() - chrono::Duration::days(30);
    let fixture = || FixtureImage::new(&label, month_ago).layer_bytes(MIB);
    let often = load(&docker, &[fixture()]).await.remove(0);
    let once = load(&docker, &[fixture()]).await.remove(0);
    for _ in 0..5 {
        use_once(&docker, &often).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await; // `once` is used later, by whole seconds
    use_once(&docker, &once).await;
    tokio::time::sleep(Duration::from_secs(2)).await; // events are applied within milliseconds
    let log = agent.stop();

    // Counted from the events: a load and five creates; a load and one create.
    let (r_often, r_once) = (record(&dir, &often), record(&dir, &once));
    let uses = |r: &Value| r["uses"].as_f64().unwrap_or(0.0);
    assert!(
        (uses(&r_often) - 6.0).abs() < 0.01 && (uses(&r_once) - 2.0).abs() < 0.01,
        "{r_often} {r_once}\n{log}"
    );
    assert!(r_once["last_used"].as_i64() > r_often["last_used"].as_i64());

    // Planned: lru takes the one used longest ago, lfu the one used least.
    let ids = [often.as_str(), once.as_str()];
    let (kinds, doc) = planned(&lru, &host, &ids);
    assert_eq!(kinds, ["disk_pressure", "no_disk_pressure"], "lru: {doc:#}");
    let (kinds, doc) = planned(&lfu, &host, &ids);
    assert_eq!(kinds, ["no_disk_pressure", "disk_pressure"], "lfu: {doc:#}");
    let text = entry(&doc, &once)["reason_text"]
        .as_str()
        .unwrap_or("")
        .to_owned();
    assert!(text.contains("order lfu: 2.0 recent uses"), "{text}");

    // And done: lfu deletes the once-used image, measures, stops at low.
    let (doc, stderr) = cli::prune_json(&lfu, &host, "warn");
    assert_eq!(
        entry(&doc, &once)["outcome"]["kind"],
        "deleted",
        "{doc:#}\n{stderr}"
    );
    assert_eq!(
        entry(&doc, &often)["reason"]["kind"],
        "no_disk_pressure",
        "{doc:#}"
    );
    assert_eq!(doc["summary"]["deleted"], 1, "{doc:#}");
    daemon.stop();
}
