//! Hostile `/images/json` answers from a fake Engine API: parent cycles, huge label maps,
//! 10 MB references, invalid UTF-8, a very long parent chain. `stagesweep plan` and `prune`
//! never panic and never spin: a listing that cannot be trusted ends in exit 3 with
//! "nothing was deleted" (and no DELETE is sent); a merely large one is planned normally.
//!
//! The engine is the fault server (`tests/support/fault_server.rs`) answering properly.

use crate::support;

use std::fmt::Write as _;
use std::time::Duration;

use serde_json::{Value, json};
use support::agent_proc::{AgentProc, wait_until};
use support::cli::run_bounded;
use support::fault_server::{Behaviour, FaultServer, Misbehaviour, Target, builders_config};

/// A run taking this long spins (a cycle used to spin forever): the test fails. Generous,
/// because the test binary is a debug build and CI machines are shared.
const SPIN: Duration = Duration::from_secs(120);

/// Image `n`: its number in the first 12 hex digits (the short ID), zeros after.
fn id(n: usize) -> String {
    format!("sha256:{}{}", short(n), "0".repeat(52))
}

fn short(n: usize) -> String {
    format!("{n:012x}")
}

/// One image as Docker 20.10 lists it, 2 days old in 2020, labelled `stage=builder`.
fn image(n: usize, parent: Option<usize>) -> Value {
    json!({
        "Id": id(n), "ParentId": parent.map(id).unwrap_or_default(),
        "RepoTags": ["<none>:<none>"], "RepoDigests": ["<none>@<none>"],
        "Created": 1_600_000_000 + n, "Size": 1000 + n, "SharedSize": -1, "VirtualSize": 1000 + n,
        "Labels": {"stage": "builder"}, "Containers": -1,
    })
}

fn body(images: &[Value]) -> Vec<u8> {
    serde_json::to_vec(images).expect("json")
}

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    deletes: usize,
    took: Duration,
}

async fn run(images: Vec<u8>, args: &[&str]) -> Run {
    let server = FaultServer::unix(Behaviour {
        misbehaviour: Misbehaviour::Nothing,
        target: Target::Everything,
        images,
    });
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("config.yaml");
    std::fs::write(&config, builders_config(&server.host, 30, dir.path())).expect("config");
    let out = run_bounded(args, &config, SPIN, "spun").await;
    let deletes = server
        .requests()
        .iter()
        .filter(|r| r.starts_with("DELETE"))
        .count();
    assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
    Run {
        code: out.code,
        stdout: out.stdout,
        stderr: out.stderr,
        deletes,
        took: out.took,
    }
}

#[tokio::test]
async fn parent_cycles_are_rejected_naming_the_images_and_nothing_is_deleted() {
    let cases: Vec<(&str, Vec<Value>, Vec<usize>)> = vec![
        (
            "two images",
            vec![image(1, Some(2)), image(2, Some(1))],
            vec![1, 2],
        ),
        ("its own parent", vec![image(7, Some(7))], vec![7]),
        (
            "a chain ending in a loop",
            vec![
                image(10, Some(11)),
                image(11, Some(12)),
                image(12, Some(13)),
                image(13, Some(12)),
                image(20, None),
            ],
            vec![12, 13],
        ),
    ];
    for (what, images, members) in cases {
        for args in [&["plan"][..], &["prune", "--output", "json"][..]] {
            let r = run(body(&images), args).await;
            assert_eq!(
                r.code,
                Some(stagesweep::exit::UNREACHABLE),
                "{what}, {args:?}: {}",
                r.stderr
            );
            assert!(r.stderr.contains("cycle"), "{what}: {}", r.stderr);
            assert!(
                r.stderr.contains("nothing was deleted"),
                "{what}: {}",
                r.stderr
            );
            for m in &members {
                assert!(
                    r.stderr.contains(&short(*m)),
                    "{what}: {} not named: {}",
                    short(*m),
                    r.stderr
                );
            }
            assert_eq!(r.deletes, 0, "{what}: a DELETE was sent");
            assert!(r.stdout.is_empty(), "{what}: no report: {}", r.stdout);
        }
    }
}

#[tokio::test]
async fn a_long_chain_and_huge_label_maps_are_planned_normally() {
    // 10 000 images in one parent chain, each planned: children before parents, no recursion.
    let chain: Vec<Value> = (1..=10_000)
        .map(|n| image(n, (n > 1).then(|| n - 1)))
        .collect();
    let r = run(body(&chain), &["plan", "--output", "json"]).await;
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let doc: Value = serde_json::from_str(&r.stdout).expect("json report");
    assert_eq!(doc["images"].as_array().map(Vec::len), Some(10_000));
    assert!(r.took < SPIN);

    // One image with 100 000 labels, 500 with 200 each.
    let mut images = Vec::new();
    let mut huge = image(1, None);
    for k in 0..100_000 {
        huge["Labels"][format!("key.{k}")] = json!(format!("value-{k}"));
    }
    images.push(huge);
    for n in 2..=501 {
        let mut im = image(n, None);
        for k in 0..200 {
            im["Labels"][format!("k{k}")] = json!("v");
        }
        images.push(im);
    }
    let r = run(body(&images), &["prune", "--output", "json"]).await;
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let doc: Value = serde_json::from_str(&r.stdout).expect("json report");
    assert_eq!(doc["summary"]["deleted"], 501, "{}", doc["summary"]);
    assert_eq!(r.deletes, 501);
}

#[tokio::test]
async fn a_ten_megabyte_reference_is_planned_and_printed() {
    let mut big = image(1, None);
    let mut reference = String::with_capacity(10 << 20);
    reference.push_str("registry.example.com/");
    while reference.len() < 10 << 20 {
        let _ = write!(reference, "x{}", reference.len() % 10);
    }
    reference.push_str(":1");
    big["RepoTags"] = json!([reference]);
    let images = vec![big, image(2, None)];
    // Text: cells are cut, so the other row is not padded to 10 MB.
    let r = run(body(&images), &["plan"]).await;
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert!(r.stdout.len() < 4096, "{} bytes of text", r.stdout.len());
    assert!(r.stdout.contains("registry.example.com/x"), "{}", r.stdout);
    // JSON: the reference whole.
    let r = run(body(&images), &["plan", "--output", "json"]).await;
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let doc: Value = serde_json::from_str(&r.stdout).expect("json report");
    let refs = &doc["images"][0]["references"][0];
    assert_eq!(refs.as_str().map(str::len), Some(reference.len()));
}

#[tokio::test]
async fn invalid_utf8_in_a_listing_is_an_engine_error_naming_the_host() {
    let mut text = body(&[image(1, None)]);
    let at = text
        .windows(7)
        .position(|w| w == b"builder")
        .expect("the label value is in the body");
    text[at] = 0xff;
    text[at + 1] = 0xfe;
    let r = run(text, &["prune"]).await;
    assert_eq!(r.code, Some(stagesweep::exit::UNREACHABLE), "{}", r.stderr);
    assert!(r.stderr.contains("unix://"), "names the host: {}", r.stderr);
    assert!(
        r.stderr.contains("cannot read (list images)"),
        "{}",
        r.stderr
    );
    assert_eq!(r.deletes, 0);
}

/// The agent fails such a pass as a whole and says why on `/healthz`.
#[test]
fn the_agent_reports_a_cyclic_listing_on_healthz() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let server = rt.block_on(async {
        FaultServer::unix(Behaviour {
            misbehaviour: Misbehaviour::Nothing,
            target: Target::Everything,
            images: body(&[image(1, Some(2)), image(2, Some(1))]),
        })
    });
    let config = "lock_file: {dir}/lock\nschedule: \"@every 1s\"\nshutdown_timeout: 5s\n\
                  metrics:\n  listen: 127.0.0.1:{port}\npolicies:\n  - name: builders\n    match:\n      labels: [stage=builder]\n";
    let agent = AgentProc::start(config, &server.host);
    wait_until(
        "/healthz to name the cycle",
        SPIN,
        || agent.log(),
        || {
            agent.get("/healthz").is_some_and(|(s, b)| {
                s == 503 && b.contains("last pass failed") && b.contains("cycle")
            })
        },
    );
    let deletes = server
        .requests()
        .iter()
        .filter(|r| r.starts_with("DELETE"))
        .count();
    assert_eq!(deletes, 0);
    let (status, _, log) = agent.terminate();
    assert!(status.success(), "exit {status}:\n{log}");
    drop(rt);
}
