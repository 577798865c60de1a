//! The sidecar image. No base image can be pulled here, so the test builds the Dockerfile's
//! final stage itself: the `FROM scratch` lines of the real Dockerfile, with the builder's
//! outputs (`/out/…`) replaced by a statically linked binary built during the test (a few
//! minutes, once; cached under the cargo target dir). The container then runs as uid 65532
//! against the test daemon (socket bind-mounted, `--group-add` its group, `--network host`),
//! prunes an old fixture and answers /healthz; `docker stop` ends it with exit code 0.

mod support;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use chrono::Utc;
use support::fixture::{FixtureImage, load};
use support::{HOW_TO_START, Scope, images_with_label};

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// `cargo build --release` of a fully static binary, in its own target dir.
fn static_binary() -> PathBuf {
    let target_dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("static-build");
    let status = Command::new(env!("CARGO"))
        .args([
            "build",
            "--release",
            "--locked",
            "--target",
            "x86_64-unknown-linux-gnu",
        ])
        .arg("--target-dir")
        .arg(&target_dir)
        .env("RUSTFLAGS", "-C target-feature=+crt-static")
        .current_dir(repo())
        .status()
        .expect("run cargo");
    assert!(status.success(), "the static release build failed");
    target_dir.join("x86_64-unknown-linux-gnu/release/stagesweep")
}

/// The final stage of the real Dockerfile, with `COPY --from=builder /out/X` turned into
/// `COPY out/X`; returns it and the context files it copies from the repository.
fn final_stage() -> (String, Vec<String>) {
    let dockerfile = std::fs::read_to_string(repo().join("Dockerfile")).expect("Dockerfile");
    assert!(
        dockerfile.contains("FROM rust:1-bookworm AS builder")
            && dockerfile.contains("LABEL stage=builder")
    );
    assert!(
        dockerfile.contains("target-feature=+crt-static")
            && dockerfile.contains("mkdir -p /out/run/stagesweep")
    );
    let start = dockerfile
        .rfind("\nFROM scratch")
        .expect("a FROM scratch final stage");
    let mut out = String::new();
    let mut from_repo = Vec::new();
    for line in dockerfile[start..].lines() {
        let line = line
            .replace("--from=builder ", "")
            .replace(" /out/", " out/");
        let words: Vec<&str> = line.split_whitespace().collect();
        if words.first() == Some(&"COPY") {
            let src = words[words.len() - 2];
            if !src.starts_with("out/") {
                from_repo.push(src.to_owned());
            }
        }
        out.push_str(&line);
        out.push('\n');
    }
    (out, from_repo)
}

fn docker(args: &[&str]) -> String {
    let out = Command::new("docker")
        .args(args)
        .env("DOCKER_BUILDKIT", "0")
        .output()
        .expect("the docker CLI is installed");
    assert!(
        out.status.success(),
        "docker {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn healthz(port: u16) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    Some(text)
}

#[tokio::test]
async fn sidecar_image_prunes_and_answers_healthz() {
    let host = std::env::var("DOCKER_HOST")
        .unwrap_or_else(|_| panic!("DOCKER_HOST is not set: {HOW_TO_START}"));
    let socket = host
        .strip_prefix("unix://")
        .expect("the sidecar test needs a local unix:// DOCKER_HOST")
        .to_owned();
    let scope = Scope::new("sidecar").await;
    let binary = static_binary();

    let ctx = tempfile::tempdir().expect("temp dir");
    let (stage, from_repo) = final_stage();
    std::fs::write(ctx.path().join("Dockerfile"), stage).expect("write Dockerfile");
    for src in &from_repo {
        let dest = ctx.path().join(src);
        std::fs::create_dir_all(dest.parent().expect("relative path")).expect("mkdir");
        std::fs::copy(repo().join(src), &dest).expect("copy context file");
    }
    std::fs::create_dir_all(ctx.path().join("out/run/stagesweep")).expect("mkdir");
    std::fs::copy(&binary, ctx.path().join("out/stagesweep")).expect("copy binary");
    let tag = scope.tag("sidecar");
    let ctx_path = ctx.path().to_str().expect("utf-8 temp path");
    docker(&[
        "build",
        "--network",
        "none",
        "--label",
        &scope.selector(),
        "-t",
        &tag,
        ctx_path,
    ]);
    assert_eq!(
        docker(&["image", "inspect", "-f", "{{.Config.User}}", &tag]),
        "65532:65532"
    );

    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let config = ctx.path().join("config.yaml");
    std::fs::write(&config, format!(
        "docker:\n  host: unix:///var/run/docker.sock\npolicies:\n  - name: sidecar\n    match:\n      labels: [\"{}\", stagesweep.role=fixture]\n    min_age: 1h\n\
         schedule: \"@every 2s\"\nrun_on_start: true\nshutdown_timeout: 5s\nmetrics:\n  listen: 127.0.0.1:{port}\n",
        scope.selector()
    )).expect("write config");
    let gid = std::fs::metadata(&socket)
        .expect("socket")
        .gid()
        .to_string();
    let fixture = FixtureImage::new(&scope.label(), Utc::now() - chrono::Duration::days(2))
        .label("stagesweep.role", "fixture");
    load(&scope.docker, &[fixture]).await;
    let name = scope.id.clone();
    docker(&[
        "run",
        "-d",
        "--name",
        &name,
        "--label",
        &scope.selector(),
        "--network",
        "host",
        "--group-add",
        &gid,
        "-v",
        &format!("{socket}:/var/run/docker.sock"),
        "-v",
        &format!("{}:/etc/stagesweep/config.yaml:ro", config.display()),
        &tag,
    ]);

    let start = Instant::now();
    let fixture_selector = "stagesweep.role=fixture";
    loop {
        let left = images_with_label(&scope.docker, &scope.selector()).await;
        let fixtures = left
            .iter()
            .filter(|i| i.labels.contains_key("stagesweep.role"))
            .count();
        let ok =
            healthz(port).is_some_and(|r| r.starts_with("HTTP/1.1 200") && r.ends_with("ok\n"));
        if fixtures == 0 && ok {
            break;
        }
        if start.elapsed() > Duration::from_secs(60) {
            let logs = Command::new("docker")
                .args(["logs", &name])
                .output()
                .map(|o| String::from_utf8_lossy(&o.stderr).into_owned());
            panic!(
                "sidecar did not prune {fixture_selector} / answer /healthz: fixtures={fixtures} healthz={:?}\n{logs:?}",
                healthz(port)
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    docker(&["stop", "-t", "20", &name]);
    assert_eq!(
        docker(&["inspect", "-f", "{{.State.ExitCode}}", &name]),
        "0"
    );
    scope.cleanup().await;
}

#[test]
fn deploy_examples_are_valid_yaml_with_socket_and_health_probe() {
    for file in [
        "deploy/docker-compose.yml",
        "deploy/kubernetes/daemonset.yaml",
    ] {
        let text = std::fs::read_to_string(repo().join(file)).expect("deploy example");
        let doc: serde_json::Value =
            serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{file}: {e}"));
        let flat = doc.to_string();
        assert!(
            flat.contains("/var/run/docker.sock"),
            "{file} mounts the socket"
        );
    }
    let ds = std::fs::read_to_string(repo().join("deploy/kubernetes/daemonset.yaml"))
        .expect("daemonset");
    let doc: serde_json::Value = serde_saphyr::from_str(&ds).expect("yaml");
    let c = &doc["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/livez");
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/healthz");
    assert!(c["resources"]["limits"]["memory"].is_string());
    assert_eq!(
        doc["spec"]["template"]["spec"]["volumes"][0]["hostPath"]["type"],
        "Socket"
    );
}
