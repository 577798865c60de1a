//! The agent's metrics listener under abuse from loopback: 500 connections held open without
//! a request (slowloris, some dribbling a header byte a second), a 1 MB request head, and a
//! flood of requests. File descriptors and memory stay bounded and come back, `/metrics` keeps
//! answering, held connections are shed by the header timeout, and passes go on meanwhile.
//!
//! The engine is the fault server answering properly with an empty inventory (no dockerd).

use crate::support;

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use support::agent_proc::{AgentProc, wait_until};
use support::fault_server::{Behaviour, FaultServer, Misbehaviour, Target};
use support::http::http_get;

fn fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, Iterator::count)
}

/// Resident memory in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn passes(agent: &AgentProc) -> f64 {
    agent
        .metric("stagesweep_passes_total{result=\"success\"}")
        .unwrap_or(0.0)
}

/// 500 connections held open, 450 silent and 50 dribbling a header byte a second: `/metrics`
/// still answers, the server sheds them all, descriptors come back. Returns the fd count
/// while they were held.
fn slowloris(agent: &AgentProc, fds0: usize) -> usize {
    let pid = agent.pid();
    let log = || agent.log();
    let mut held: Vec<TcpStream> = (0..500)
        .filter_map(|_| TcpStream::connect(("127.0.0.1", agent.port)).ok())
        .collect();
    assert!(held.len() >= 450, "only {} connections opened", held.len());
    for s in held.iter_mut().take(50) {
        let _ = s.write_all(b"GET /metrics HTTP/1.1\r\nX-Slow: ");
    }
    let asked = Instant::now();
    let reply = http_get(agent.port, "/metrics", Duration::from_secs(5));
    assert!(
        reply.is_some_and(|(s, _)| s == 200),
        "/metrics with 500 connections held"
    );
    assert!(
        asked.elapsed() < Duration::from_secs(2),
        "{:?}",
        asked.elapsed()
    );
    let fds_held = fds(pid);
    assert!(
        fds_held <= fds0 + 512 + 8,
        "fds {fds0} → {fds_held} with 500 held (cap 512)"
    );
    // The server sheds them: busy ones after 1 s, the first 64 after 10 s.
    let dribble_until = Instant::now() + Duration::from_secs(13);
    while Instant::now() < dribble_until {
        for s in held.iter_mut().take(50) {
            let _ = s.write_all(b"x");
        }
        std::thread::sleep(Duration::from_secs(1));
    }
    let opened = held.len();
    let mut closed = 0;
    for s in &mut held {
        s.set_read_timeout(Some(Duration::from_millis(200))).ok();
        let mut buf = [0u8; 512];
        // EOF, a reset, or a 408 answer: the server gave up on it.
        match s.read(&mut buf) {
            Ok(0) | Err(_) => closed += 1,
            Ok(n) => closed += usize::from(buf[..n].starts_with(b"HTTP/1.1 408")),
        }
    }
    drop(held);
    assert_eq!(closed, opened, "held connections the server left open");
    wait_until("descriptors back", Duration::from_secs(10), log, || {
        fds(pid) <= fds0 + 4
    });

    fds_held
}

/// A 1 MB request head and one with 40 fields: refused without buffering them.
fn oversized_heads(port: u16) {
    let mut big = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    big.set_read_timeout(Some(Duration::from_secs(5))).ok();
    let mut big_head = b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: ".to_vec();
    big_head.resize(big_head.len() + (1 << 20), b'a');
    big_head.extend_from_slice(b"\r\n\r\n");
    let _ = big.write_all(&big_head); // the server may close before it is all sent
    let mut answer = Vec::new();
    let _ = big.read_to_end(&mut answer);
    assert!(
        answer.is_empty() || answer.starts_with(b"HTTP/1.1 431"),
        "{}",
        String::from_utf8_lossy(&answer[..answer.len().min(200)])
    );

    // Too many header fields.
    let mut many = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    many.set_read_timeout(Some(Duration::from_secs(5))).ok();
    let mut fields = String::from("GET /metrics HTTP/1.1\r\nHost: x\r\n");
    for i in 0..40 {
        let _ = write!(fields, "X-H{i}: v\r\n");
    }
    fields.push_str("Connection: close\r\n\r\n");
    many.write_all(fields.as_bytes()).expect("send");
    let mut answer = String::new();
    let _ = many.read_to_string(&mut answer);
    assert!(
        answer.starts_with("HTTP/1.1 431"),
        "40 header fields: {answer}"
    );
}

/// 8 clients for 4 s, one request per connection: all answered, passes go on meanwhile.
fn flood(agent: &AgentProc) {
    let log = || agent.log();
    let before = passes(agent);
    let (ok, failed) = (AtomicUsize::new(0), AtomicUsize::new(0));
    std::thread::scope(|s| {
        for _ in 0..8 {
            s.spawn(|| {
                let until = Instant::now() + Duration::from_secs(4);
                while Instant::now() < until {
                    match http_get(agent.port, "/metrics", Duration::from_secs(5)) {
                        Some((200, _)) => ok.fetch_add(1, Ordering::Relaxed),
                        _ => failed.fetch_add(1, Ordering::Relaxed),
                    };
                }
            });
        }
    });
    let (ok, failed) = (ok.into_inner(), failed.into_inner());
    eprintln!("flood: {ok} answered, {failed} failed");
    assert!(ok > 100 && failed == 0, "{ok} answered, {failed} failed");
    wait_until(
        "passes during and after the flood",
        Duration::from_secs(10),
        log,
        || passes(agent) >= before + 3.0,
    );
}

#[test]
fn the_listener_stays_bounded_and_answers_under_abuse() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let server = rt.block_on(async {
        FaultServer::unix(Behaviour {
            misbehaviour: Misbehaviour::Nothing,
            target: Target::Everything,
            images: b"[]".to_vec(),
        })
    });
    let config = "lock_file: {dir}/lock\nschedule: \"@every 1s\"\nshutdown_timeout: 5s\n\
                  metrics:\n  listen: 127.0.0.1:{port}\npolicies: []\n";
    let agent = AgentProc::start(config, &server.host);
    let pid = agent.pid();
    let log = || agent.log();
    wait_until("passes", Duration::from_secs(30), log, || {
        passes(&agent) >= 2.0
    });
    let (fds0, rss0) = (fds(pid), rss_kib(pid));

    let fds_held = slowloris(&agent, fds0);
    oversized_heads(agent.port);
    flood(&agent);
    let rss1 = rss_kib(pid);
    eprintln!("fds {fds0} → {fds_held} with 500 held; rss {rss0} KiB → {rss1} KiB");
    assert!(rss1 < rss0 + 32 * 1024, "rss {rss0} KiB → {rss1} KiB");
    wait_until(
        "descriptors back after the flood",
        Duration::from_secs(10),
        log,
        || fds(pid) <= fds0 + 4,
    );
    assert_eq!(
        agent.get("/healthz").map(|r| r.0),
        Some(200),
        "{}",
        agent.log()
    );
    let (status, _, log) = agent.terminate();
    assert!(status.success(), "exit {status}:\n{log}");
    drop(server);
    drop(rt);
}
