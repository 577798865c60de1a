//! One keep-alive pool for every engine call: a whole pass against a fake Engine API that
//! counts the connections it accepts opens at most `docker.concurrency` plus a few (the
//! listings, `/info` and `/system/df` run side by side at the start of a pass), however many
//! calls it makes; over a unix socket and over TCP alike.

use crate::support;

use std::time::Duration;

use chrono::Utc;
use futures_util::{StreamExt, stream};
use serde_json::{Value, json};
use stagesweep::config::DockerConfig;
use stagesweep::engine::Engine;
use stagesweep::engine::docker::connect;
use stagesweep::pass::{PassOptions, run_pass};
use support::fake_api::{FakeApi, Recorded};
use support::passes::config;
use tokio_util::sync::CancellationToken;

/// What the issue allows on top of the pool: the pass's first calls overlap.
const SLACK: usize = 4;
const CONCURRENCY: usize = 2;
/// Tagged images the fake lists but cannot inspect: each costs an inspect for its tag time
/// when planned and another before its deletion (both answered 404: gone).
const EXTRA: usize = 30;

/// The 1.41 recording with `EXTRA` more tagged images, none used by a container.
fn many_images() -> Recorded {
    let mut rec = Recorded::load("1.41");
    let images = rec
        .images
        .as_array_mut()
        .expect("the recorded listing is an array");
    for k in 0..EXTRA {
        images.push(json!({
            "Containers": -1,
            "Created": 1_700_000_000,
            "Id": format!("sha256:{k:064x}"),
            "Labels": Value::Null,
            "ParentId": "",
            "RepoDigests": [],
            "RepoTags": [format!("many:{k}")],
            "SharedSize": -1,
            "Size": 1000,
            "VirtualSize": 1000,
        }));
    }
    rec
}

/// A pass that deletes (or finds gone) every image, then one DELETE per image straight
/// through the engine: returns (requests, connections).
async fn a_pass_and_deletes(api: &FakeApi) -> (usize, usize) {
    let cfg = DockerConfig {
        host: Some(api.host.clone()),
        timeout: Duration::from_secs(10),
        concurrency: CONCURRENCY,
    };
    let engine = connect(&cfg).await.expect("connect to the fake engine");
    let mut config =
        config("policies:\n  - name: all\n    match: { all_images: true }\n    min_age: 0s\n");
    config.docker = cfg;
    let report = run_pass(
        &engine,
        &config,
        Utc::now(),
        &PassOptions::default(),
        &CancellationToken::new(),
    )
    .await
    .expect("the pass runs");
    assert!(report.plan.decisions.len() > EXTRA, "every image decided");
    stream::iter(0..EXTRA)
        .for_each_concurrent(CONCURRENCY, |k| {
            let engine = &engine;
            async move {
                let _gone = engine.remove_image(&format!("many:{k}")).await;
            }
        })
        .await;
    (api.requests().len(), api.connections())
}

fn check(over: &str, requests: usize, connections: usize) {
    // The test can fail: without reuse there is one connection per request.
    assert!(
        requests >= 3 * EXTRA,
        "{over}: the pass made {requests} requests, expected at least {}",
        3 * EXTRA
    );
    assert!(
        connections <= CONCURRENCY + SLACK,
        "{over}: {requests} requests took {connections} connections; the pool allows \
         docker.concurrency ({CONCURRENCY}) + {SLACK}"
    );
}

#[tokio::test]
async fn a_pass_over_a_unix_socket_reuses_its_connections() {
    let api = FakeApi::start(many_images());
    let (requests, connections) = a_pass_and_deletes(&api).await;
    check("unix", requests, connections);
}

#[tokio::test]
async fn a_pass_over_tcp_reuses_its_connections() {
    let api = FakeApi::start_tcp(many_images());
    let (requests, connections) = a_pass_and_deletes(&api).await;
    check("tcp", requests, connections);
}
