//! A docker socket that hangs, answers slowly, resets mid-body or answers garbage, at every
//! step a pass talks to it (the version negotiation at connect, the inventory, a deletion):
//! `stagesweep prune` ends within `docker.timeout` (plus start-up slack) with exit 3 and a
//! message naming the host, never hangs, never panics, deletes nothing it did not plan; the
//! agent keeps answering `/metrics` and `/healthz` meanwhile.
//!
//! The engine is a fault server the test starts (`tests/support/fault_server.rs`); no dockerd.

use crate::support;

use std::time::{Duration, Instant};

use support::agent_proc::{AgentProc, wait_until};
use support::cli::{Finished, run_bounded};
use support::fault_server::{Behaviour, FaultServer, Misbehaviour, Target, builders_config};

/// `docker.timeout` in these tests.
const TIMEOUT_SECS: u64 = 2;
/// What a run may take beyond the timeout: process start, connect, planning, printing.
const SLACK: Duration = Duration::from_secs(6);
/// A run taking this long has hung (the test kills it and fails).
const HUNG: Duration = Duration::from_secs(60);

/// One old image labelled `stage=builder`, as Docker 20.10 lists it: the plan deletes it.
fn one_old_builder() -> Vec<u8> {
    let id = format!("sha256:{}", "ab".repeat(32));
    format!(
        r#"[{{"Id":"{id}","ParentId":"","RepoTags":["<none>:<none>"],"RepoDigests":["<none>@<none>"],"Created":1600000000,"Size":1000,"SharedSize":-1,"VirtualSize":1000,"Labels":{{"stage":"builder"}},"Containers":-1}}]"#
    )
    .into_bytes()
}

/// `stagesweep ARGS --config <config for host>`; killed (and the test failed) after [`HUNG`].
async fn run(host: &str, args: &[&str]) -> Finished {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("config.yaml");
    std::fs::write(&path, builders_config(host, TIMEOUT_SECS, dir.path())).expect("write config");
    run_bounded(args, &path, HUNG, &format!("against {host} hung")).await
}

async fn server(tcp: bool, misbehaviour: Misbehaviour, target: Target) -> FaultServer {
    let behaviour = Behaviour {
        misbehaviour,
        target,
        images: one_old_builder(),
    };
    if tcp {
        FaultServer::tcp(behaviour).await
    } else {
        FaultServer::unix(behaviour)
    }
}

/// Every misbehaviour at every step ends in exit 3, in time, naming the host, no panic.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_fault_ends_in_exit_3_within_the_timeout_naming_the_host() {
    let faults = [
        Misbehaviour::Hang,
        Misbehaviour::SlowBody,
        Misbehaviour::SlowHeaders,
        Misbehaviour::ResetMidBody,
        Misbehaviour::GarbageJson,
        Misbehaviour::NotHttp,
    ];
    let targets = [
        Target::Everything,
        Target::Version,
        Target::Images,
        Target::Delete,
    ];
    let mut cases = Vec::new();
    for tcp in [false, true] {
        for m in faults {
            for t in targets {
                cases.push((tcp, m, t));
            }
        }
    }
    // Concurrently, a few at a time: each case mostly waits for its timeout.
    let results = futures_util::future::join_all(cases.chunks(12).map(|chunk| async move {
        let mut out = Vec::new();
        for &(tcp, m, t) in chunk {
            let server = server(tcp, m, t).await;
            let run = run(&server.host, &["prune", "--output", "json"]).await;
            out.push((tcp, m, t, server.host.clone(), server.requests(), run));
        }
        out
    }))
    .await;
    let mut failures = Vec::new();
    for (tcp, m, t, host, requests, run) in results.into_iter().flatten() {
        let case = format!("{m:?} on {t:?} over {}", if tcp { "tcp" } else { "unix" });
        let message = run.stderr.lines().last().unwrap_or_default();
        eprintln!("{case} ({:.1}s): {message}", run.took.as_secs_f64());
        let mut problems = Vec::new();
        if run.code != Some(stagesweep::exit::UNREACHABLE) {
            problems.push(format!("exit {:?}, expected 3", run.code));
        }
        if !run.stderr.contains(&host) {
            problems.push(format!("the message does not name {host}"));
        }
        if run.took > Duration::from_secs(TIMEOUT_SECS) + SLACK {
            problems.push(format!("took {:?}", run.took));
        }
        if run.stderr.contains("panicked") {
            problems.push("panicked".to_owned());
        }
        let deletes = requests.iter().filter(|r| r.starts_with("DELETE")).count();
        if deletes > 1 {
            problems.push(format!("{deletes} deletions for one planned image"));
        }
        if t == Target::Delete && !run.stdout.is_empty() {
            // The pass got as far as deleting: its report is printed, the failure counted.
            let doc: serde_json::Value =
                serde_json::from_str(&run.stdout).expect("the report is JSON");
            if doc["summary"]["failed"] != 1 {
                problems.push(format!("summary {}", doc["summary"]));
            }
        }
        if !problems.is_empty() {
            failures.push(format!(
                "{case}: {}\n  stderr: {}",
                problems.join("; "),
                run.stderr.trim()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// While every inventory read hangs, the agent's listener answers at once, health says why,
/// and SIGTERM still stops it promptly.
#[test]
fn the_agent_keeps_serving_while_docker_hangs() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let server = rt.block_on(server(false, Misbehaviour::Hang, Target::Images));
    let config = format!(
        "docker:\n  timeout: {TIMEOUT_SECS}s\nlock_file: {{dir}}/lock\nschedule: \"@every 1s\"\nshutdown_timeout: 5s\n\
         metrics:\n  listen: 127.0.0.1:{{port}}\npolicies:\n  - name: builders\n    match:\n      labels: [stage=builder]\n"
    );
    let agent = AgentProc::start(&config, &server.host);
    let log = || agent.log();
    wait_until("the listener", Duration::from_secs(20), log, || {
        agent.get("/metrics").is_some()
    });
    // Over several timeouts' worth of hanging passes, every request answers promptly.
    let until = Instant::now() + Duration::from_secs(4 * TIMEOUT_SECS);
    let mut answered = 0;
    while Instant::now() < until {
        for path in ["/metrics", "/healthz"] {
            let asked = Instant::now();
            let reply = agent.get(path);
            assert!(
                reply.is_some(),
                "{path} did not answer; log:\n{}",
                agent.log()
            );
            assert!(
                asked.elapsed() < Duration::from_secs(2),
                "{path} took {:?}",
                asked.elapsed()
            );
            answered += 1;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    assert!(answered >= 10);
    wait_until(
        "health to name the hanging host",
        Duration::from_secs(20),
        log,
        || {
            agent.get("/healthz").is_some_and(|(status, body)| {
                status == 503 && body.contains("did not answer") && body.contains(&server.host)
            })
        },
    );
    assert!(
        agent
            .metric("stagesweep_passes_total{result=\"failure\"}")
            .unwrap_or(0.0)
            >= 1.0,
        "hanging passes are counted as failures"
    );
    let (status, took, log) = agent.terminate();
    assert!(status.success(), "exit {status}:\n{log}");
    assert!(
        took < Duration::from_secs(5 + TIMEOUT_SECS + 2),
        "took {took:?}"
    );
    assert!(!log.contains("panicked"), "{log}");
    drop(rt);
}
