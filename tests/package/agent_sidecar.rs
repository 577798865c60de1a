//! The sidecar image. No base image can be pulled here, so the test builds the Dockerfile's
//! final stage itself: the `FROM scratch` lines of the real Dockerfile, with the builder's
//! outputs (`/out/…`) replaced by a statically linked binary built during the test (a few
//! minutes, once; cached under the cargo target dir). The container then runs as uid 65532
//! against the test daemon (socket bind-mounted, `--group-add` its group, `--network host`),
//! prunes an old fixture and answers /healthz; `docker stop` ends it with exit code 0.

#[path = "../support/build_context.rs"]
mod build_context;
use crate::support;

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use chrono::Utc;
use support::fixture::{FixtureImage, load};
use support::http::{self, Response, free_port};
use support::{Scope, docker_host, images_with_label};

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The builder stage, built from exactly its own context (see `support/build_context.rs`),
/// under a target dir kept between runs: its `/out`, with the static binary in it.
fn builder_stage_output() -> PathBuf {
    let scratch = Path::new(env!("CARGO_TARGET_TMPDIR")).join("image-builder");
    let target_dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("static-build");
    build_context::build(repo(), &scratch, &target_dir)
}

/// The final stage of the real Dockerfile, with `COPY --from=builder /out/X` turned into
/// `COPY out/X`; returns it and the context files it copies from the repository.
fn final_stage() -> (String, Vec<String>) {
    let dockerfile = std::fs::read_to_string(repo().join("Dockerfile")).expect("Dockerfile");
    let ignore = build_context::DockerIgnore::parse(
        &std::fs::read_to_string(repo().join(".dockerignore")).unwrap_or_default(),
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
                assert!(
                    !ignore.excludes(Path::new(src)),
                    "the final stage copies {src}, which .dockerignore excludes"
                );
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

fn healthz(port: u16) -> Option<Response> {
    http::request(port, "/healthz", None, Duration::from_secs(5))
}

/// The real builder stage's output, then the real final stage on it: the image's tag.
fn build_image(scope: &Scope) -> String {
    let out = builder_stage_output();

    let ctx = tempfile::tempdir().expect("temp dir");
    let (stage, from_repo) = final_stage();
    std::fs::write(ctx.path().join("Dockerfile"), stage).expect("write Dockerfile");
    for src in &from_repo {
        let dest = ctx.path().join(src);
        std::fs::create_dir_all(dest.parent().expect("relative path")).expect("mkdir");
        std::fs::copy(repo().join(src), &dest).expect("copy context file");
    }
    std::fs::create_dir_all(ctx.path().join("out/run/stagesweep")).expect("mkdir");
    assert!(
        out.join("run/stagesweep").is_dir(),
        "the builder makes /out/run/stagesweep"
    );
    std::fs::copy(out.join("stagesweep"), ctx.path().join("out/stagesweep")).expect("copy binary");
    check_static_and_packed(&out.join("stagesweep"));
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

    tag
}

/// The image's binary needs no shared library (it runs `FROM scratch`) and carries its
/// relocations packed (`DT_RELR`: ≈ 1 MiB less resident, BENCHMARKS.md "Agent memory"); the
/// image test then shows that such a static-pie relocates itself and runs.
fn check_static_and_packed(binary: &Path) {
    let out = Command::new("readelf")
        .args(["--dynamic", "--wide"])
        .arg(binary)
        .output()
        .expect("readelf (binutils) is installed");
    assert!(
        out.status.success(),
        "readelf: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dynamic = String::from_utf8_lossy(&out.stdout);
    assert!(
        !dynamic.contains("(NEEDED)"),
        "the image's binary needs shared libraries:\n{dynamic}"
    );
    assert!(
        dynamic.contains("(RELR)"),
        "the image's binary has no DT_RELR:\n{dynamic}"
    );
}

#[tokio::test]
async fn sidecar_image_prunes_and_answers_healthz() {
    let host = docker_host();
    let socket = host
        .strip_prefix("unix://")
        .expect("the sidecar test needs a local unix:// DOCKER_HOST")
        .to_owned();
    let scope = Scope::new("sidecar").await;
    let tag = build_image(&scope);

    let port = free_port();
    let config_dir = tempfile::tempdir().expect("temp dir");
    let config = config_dir.path().join("config.yaml");
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
        let ok = healthz(port)
            .is_some_and(|r| r.head.starts_with("HTTP/1.1 200") && r.body.starts_with("ok\n"));
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
    check_healthcheck_and_labels(&name, &tag, port);

    docker(&["stop", "-t", "20", &name]);
    assert_eq!(
        docker(&["inspect", "-f", "{{.State.ExitCode}}", &name]),
        "0"
    );
    scope.cleanup().await;
}

#[test]
fn dockerfile_is_pinned_labelled_and_not_tied_to_one_architecture() {
    let dockerfile = std::fs::read_to_string(repo().join("Dockerfile")).expect("Dockerfile");
    let build = std::fs::read_to_string(repo().join("deploy/image/build.sh")).expect("build.sh");
    let steps = build_context::instructions(&dockerfile);
    for from in steps.iter().filter(|i| i.starts_with("FROM ")) {
        let image = from.split_whitespace().nth(1).expect("FROM IMAGE");
        if image == "scratch" {
            continue;
        }
        // rust:1.95.0-slim-bookworm: a full Rust version and a Debian release.
        let tag = image.split_once(':').map_or("", |(_, t)| t);
        let version: Vec<&str> = tag.split('-').next().unwrap_or("").split('.').collect();
        assert!(
            version.len() == 3 && version.iter().all(|p| p.parse::<u32>().is_ok()),
            "{from}: pin the base image to a full version tag"
        );
        assert!(tag.contains("bookworm"), "{from}: pin the Debian release");
        let pinned: Vec<u32> = version.iter().map(|p| p.parse().expect("number")).collect();
        let needed: Vec<u32> = env!("CARGO_PKG_RUST_VERSION")
            .split('.')
            .map(|p| p.parse().expect("number"))
            .collect();
        assert!(pinned >= needed, "{from} is older than rust-version");
    }
    for (name, text) in [("Dockerfile", &dockerfile), ("build.sh", &build)] {
        for arch in ["x86_64", "amd64", "aarch64", "arm64"] {
            let code: String = text
                .lines()
                .filter(|l| !l.trim_start().starts_with('#'))
                .collect();
            assert!(!code.contains(arch), "{name} hard-codes {arch}");
        }
    }
    let labels: String = steps
        .iter()
        .filter(|i| i.starts_with("LABEL org.opencontainers"))
        .cloned()
        .collect();
    for key in [
        "title",
        "description",
        "version",
        "revision",
        "created",
        "licenses",
    ] {
        assert!(
            labels.contains(&format!("org.opencontainers.image.{key}=")),
            "missing OCI label {key}"
        );
    }
    assert!(
        steps.contains(&format!("ARG VERSION={}", env!("CARGO_PKG_VERSION"))),
        "ARG VERSION must default to Cargo.toml's version"
    );
    assert!(
        steps.iter().any(|i| i.starts_with("HEALTHCHECK ")
            && i.ends_with(r#"CMD ["/stagesweep", "healthcheck"]"#))
    );
}

/// The image's `HEALTHCHECK` and OCI labels, and `stagesweep healthcheck` in the running
/// container.
fn check_healthcheck_and_labels(name: &str, tag: &str, port: u16) {
    let name = name.to_owned();
    // The image's HEALTHCHECK command: its default URL comes from the config the agent reads
    // (STAGESWEEP_CONFIG), and it reports the endpoint's answer by its exit code.
    let probe = Command::new("docker")
        .args(["exec", &name, "/stagesweep", "healthcheck"])
        .output()
        .expect("docker exec");
    let probe_out = String::from_utf8_lossy(&probe.stdout);
    assert!(
        probe_out.contains(&format!("http://127.0.0.1:{port}/livez")),
        "healthcheck did not use /livez on metrics.listen: {probe_out} {}",
        String::from_utf8_lossy(&probe.stderr)
    );
    let healthz_url = format!("http://127.0.0.1:{port}/healthz");
    let ok = docker(&[
        "exec",
        &name,
        "/stagesweep",
        "healthcheck",
        "--url",
        &healthz_url,
    ]);
    assert!(ok.contains("200 OK ok"), "{ok}");
    let missing = Command::new("docker")
        .args(["exec", &name, "/stagesweep", "healthcheck", "--url"])
        .arg(format!("http://127.0.0.1:{port}/nowhere"))
        .status()
        .expect("docker exec");
    assert_eq!(missing.code(), Some(1), "a 404 is unhealthy");
    assert_eq!(
        docker(&[
            "image",
            "inspect",
            "-f",
            "{{json .Config.Healthcheck.Test}}",
            tag
        ]),
        r#"["CMD","/stagesweep","healthcheck"]"#
    );
    let labels: serde_json::Value = serde_json::from_str(&docker(&[
        "image",
        "inspect",
        "-f",
        "{{json .Config.Labels}}",
        tag,
    ]))
    .expect("labels as JSON");
    assert_eq!(
        labels["org.opencontainers.image.version"],
        env!("CARGO_PKG_VERSION")
    );
    assert_eq!(
        labels["org.opencontainers.image.licenses"],
        env!("CARGO_PKG_LICENSE")
    );
    assert!(
        labels.get("stage").is_none(),
        "the final image must not carry the builder's stage label"
    );
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
