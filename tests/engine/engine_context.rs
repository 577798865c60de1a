//! The docker CLI's contexts, end to end: with `DOCKER_HOST` unset, `stagesweep plan` talks to
//! the engine of the current context (here the private dockerd of scripts/test.sh), not to the
//! local socket; `DOCKER_HOST` still wins; a missing context or an `ssh://` one is a usage
//! error (exit 2). The contexts live in a temporary `DOCKER_CONFIG`. Nothing is deleted
//! (`plan`, and a configuration without policies).

use crate::support;

use std::path::Path;
use std::process::Output;

use sha2::{Digest, Sha256};
use support::{cli, docker_host};

/// What `docker context create NAME --docker host=HOST` leaves in `dir`.
fn create_context(dir: &Path, name: &str, host: &str) {
    let meta = dir
        .join("contexts/meta")
        .join(hex::encode(Sha256::digest(name.as_bytes())));
    std::fs::create_dir_all(&meta).expect("mkdir");
    let text = format!(
        r#"{{"Name":"{name}","Metadata":{{}},"Endpoints":{{"docker":{{"Host":"{host}","SkipTLSVerify":false}}}}}}"#
    );
    std::fs::write(meta.join("meta.json"), text).expect("write meta.json");
}

/// What `docker context use NAME` leaves in `dir`.
fn use_context(dir: &Path, name: &str) {
    std::fs::write(
        dir.join("config.json"),
        format!(r#"{{"auths":{{}},"currentContext":"{name}"}}"#),
    )
    .expect("write config.json");
}

fn plan(docker_config: &Path, env: &[(&str, &str)]) -> Output {
    let config = docker_config.join("stagesweep.yaml");
    std::fs::write(&config, "history:\n  enabled: false\npolicies: []\n").expect("write config");
    let mut cmd = cli::stagesweep();
    cmd.args(["plan", "--config"])
        .arg(&config)
        .env("DOCKER_CONFIG", docker_config)
        .env("RUST_LOG", "info")
        .env_remove("DOCKER_HOST")
        .env_remove("DOCKER_CONTEXT")
        .env_remove("DOCKER_TLS_VERIFY");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run stagesweep plan")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn the_current_context_chooses_the_engine_and_docker_host_overrides_it() {
    let host = docker_host();
    let dir = tempfile::tempdir().expect("temp dir");
    create_context(dir.path(), "private", &host);
    let gone = format!("unix://{}", dir.path().join("nothing-here.sock").display());
    create_context(dir.path(), "remote", &gone);

    use_context(dir.path(), "private");
    let out = plan(dir.path(), &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("using a docker CLI context") && stderr(&out).contains("private"),
        "{}",
        stderr(&out)
    );

    // `docker context use remote`: stagesweep follows it, and does not fall back to the
    // local socket when that engine is not there.
    use_context(dir.path(), "remote");
    let out = plan(dir.path(), &[]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("nothing-here.sock"),
        "{}",
        stderr(&out)
    );

    // DOCKER_CONTEXT beats currentContext; DOCKER_HOST beats both.
    let out = plan(dir.path(), &[("DOCKER_CONTEXT", "private")]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = plan(dir.path(), &[("DOCKER_HOST", host.as_str())]);
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn a_missing_or_ssh_context_is_a_usage_error() {
    let dir = tempfile::tempdir().expect("temp dir");
    use_context(dir.path(), "deleted-meanwhile");
    let out = plan(dir.path(), &[]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("docker context \"deleted-meanwhile\"")
            && stderr(&out).contains("does not exist"),
        "{}",
        stderr(&out)
    );

    create_context(dir.path(), "tunnel", "ssh://builder@build-1");
    let out = plan(dir.path(), &[("DOCKER_CONTEXT", "tunnel")]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("ssh://builder@build-1") && stderr(&out).contains("not support"),
        "{}",
        stderr(&out)
    );
}
