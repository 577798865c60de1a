//! `deploy/socket-proxy/haproxy.cfg`, the socket proxy docs/deployment.md shows for hosts where
//! the agent must not hold root-equivalent access: run by haproxy in front of the test daemon,
//! it lets `stagesweep plan` and `stagesweep prune` do their whole job (so it allows every
//! call they make) and answers 403 to anything else, forced deletions included.

use crate::support;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chrono::Utc;
use support::fixture::{FixtureImage, load};
use support::{Scope, cli, docker_host, images_with_label};

struct Proxy {
    child: Child,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_proxy(socket: &Path, docker_socket: &str) -> Proxy {
    let cfg = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/socket-proxy/haproxy.cfg");
    let child = Command::new("haproxy")
        .arg("-f")
        .arg(&cfg)
        .arg("-db")
        .env("STAGESWEEP_PROXY_SOCKET", socket)
        .env("STAGESWEEP_PROXY_USER", "root")
        .env("STAGESWEEP_PROXY_GROUP", "root")
        .env("DOCKER_SOCKET", docker_socket)
        .stdout(Stdio::null())
        .spawn()
        .expect("haproxy is installed (apt-get install haproxy; .ci/run installs it)");
    let mut proxy = Proxy { child };
    let start = Instant::now();
    while UnixStream::connect(socket).is_err() {
        if let Ok(Some(status)) = proxy.child.try_wait() {
            panic!("haproxy exited with {status}");
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "haproxy did not listen"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    proxy
}

/// The status code of one raw request through the proxy.
fn status(socket: &Path, method: &str, path: &str) -> u16 {
    let mut s = UnixStream::connect(socket).expect("connect to the proxy");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: docker\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{{}}"
    )
    .expect("write");
    let mut head = [0u8; 12];
    s.read_exact(&mut head).expect("status line");
    String::from_utf8_lossy(&head[9..12])
        .parse()
        .expect("a status code")
}

/// `stagesweep ARGS` with `config`, which names the proxy, and no `DOCKER_HOST`.
fn stagesweep(config: &Path, args: &[&str]) -> std::process::Output {
    cli::with_config(config)
        .args(args)
        .env_remove("DOCKER_HOST")
        .output()
        .expect("run stagesweep")
}

#[tokio::test]
async fn stagesweep_works_through_the_proxy_and_nothing_else_does() {
    let host = docker_host();
    let docker_socket = host
        .strip_prefix("unix://")
        .expect("the proxy test needs a local unix:// DOCKER_HOST");
    let dir = tempfile::tempdir().expect("temp dir");
    let socket = dir.path().join("proxy.sock");
    let _proxy = start_proxy(&socket, docker_socket);
    let scope = Scope::new("proxy").await;
    let old = FixtureImage::new(&scope.label(), Utc::now() - chrono::Duration::days(2))
        .label("stagesweep.role", "fixture");
    load(&scope.docker, &[old]).await;
    let config = dir.path().join("config.yaml");
    std::fs::write(
        &config,
        format!(
            "history:\n  enabled: false\ndocker:\n  host: unix://{}\npolicies:\n  - name: proxied\n    match:\n      labels: [\"{}\", stagesweep.role=fixture]\n    min_age: 1h\nlock_file: {}\nbuilds:\n  lock_file: {}\n",
            socket.display(),
            scope.selector(),
            dir.path().join("lock").display(),
            dir.path().join("builds.lock").display()
        ),
    )
    .expect("write config");

    let plan = stagesweep(&config, &["plan"]);
    assert!(
        plan.status.success(),
        "plan through the proxy: {}",
        String::from_utf8_lossy(&plan.stderr)
    );
    let prune = stagesweep(&config, &["prune", "--output", "json"]);
    let report = String::from_utf8_lossy(&prune.stdout);
    assert!(
        prune.status.success(),
        "prune through the proxy: {report}{}",
        String::from_utf8_lossy(&prune.stderr)
    );
    assert!(report.contains("\"deleted\": 1"), "{report}");
    assert!(
        images_with_label(&scope.docker, &scope.selector())
            .await
            .is_empty(),
        "the fixture was deleted through the proxy"
    );

    // What stagesweep does not do is refused.
    assert_eq!(status(&socket, "GET", "/v1.41/images/json"), 200);
    for (method, path) in [
        ("POST", "/v1.41/containers/create"),
        ("POST", "/containers/create"),
        ("POST", "/build"),
        ("DELETE", "/v1.41/containers/x"),
        ("DELETE", "/v1.41/images/busybox:latest?force=1"),
        ("DELETE", "/images/busybox:latest?noprune=false&force=true"),
        ("POST", "/v1.41/images/load"),
        ("GET", "/v1.41/containers/x/archive?path=/"),
    ] {
        assert_eq!(status(&socket, method, path), 403, "{method} {path}");
    }
    scope.cleanup().await;
}
