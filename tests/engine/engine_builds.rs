//! Running builds against a real private engine (`DOCKER_HOST`, started by scripts/test.sh),
//! through its own docker CLI (`support::matrix::docker_cli`).
//!
//! The race: a classic multi-stage build (`DOCKER_BUILDKIT=0 docker build`) whose final stage
//! sleeps before `COPY --from=builder`, and an aggressive `stagesweep prune` (`min_age: 0s`)
//! run during the sleep. Without coordination the prune deletes the builder stage and the
//! build fails; under `stagesweep hold`, under `flock -s`, or seen by detection alone, the
//! build succeeds and the prune deletes the stage afterwards. Also `--no-wait` and
//! `max_defer` through the binary. These tests wait for real builds, so they sleep.
//! The races are skipped on Podman ([`skipped`]): buildah's steps are not containers the API
//! lists, and Podman itself keeps a running build's images (checked on 4.3).

use crate::support;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use bollard::query_parameters::ListContainersOptionsBuilder;
use chrono::Utc;
use serde_json::Value;
use stagesweep::locks::BuildLock;
use support::Scope;
use support::fixture::{FixtureImage, load};
use support::images::base_image;
use tokio::process::{Child, Command};

/// How long the final stage sleeps before `COPY --from=builder`: the window of the race.
const SLEEP_SECS: u64 = 8;

/// One race: a scope, its base image, a build context and a temp dir for locks and logs.
struct Race {
    scope: Scope,
    dir: tempfile::TempDir,
    build_lock: PathBuf,
    context: PathBuf,
    log: PathBuf,
}

/// Why the races cannot run on this engine, if they cannot.
fn skipped() -> bool {
    support::matrix::skip_if(
        !support::matrix::engine().build_steps_are_listed_containers(),
        "Podman builds with buildah: its RUN steps are external containers the API does not \
         list (nothing to detect, nothing to time the race by), and Podman refuses (409) to \
         delete the images a build in progress uses",
    )
}

impl Race {
    async fn new(name: &str) -> Race {
        let scope = Scope::new(name).await;
        let (_, base) = base_image(&scope).await;
        let dir = tempfile::tempdir().expect("temp dir");
        let context = dir.path().join("context");
        std::fs::create_dir_all(&context).expect("context dir");
        let dockerfile = format!(
            "FROM {base} AS builder\nLABEL stage=builder\nRUN echo artifact > /artifact\n\
             FROM {base}\nRUN sleep {SLEEP_SECS}\nCOPY --from=builder /artifact /artifact\n"
        );
        std::fs::write(context.join("Dockerfile"), dockerfile).expect("Dockerfile");
        let build_lock = dir.path().join("run/stagesweep/builds.lock");
        std::fs::create_dir_all(build_lock.parent().expect("parent")).expect("lock dir");
        let log = dir.path().join("build.log");
        Race {
            scope,
            dir,
            build_lock,
            context,
            log,
        }
    }

    /// A config deleting this race's builder-stage images at any age.
    fn config(&self, detect: bool) -> PathBuf {
        let path = self.dir.path().join(format!("config-{detect}.yaml"));
        let text = format!(
            "history:\n  enabled: false\nlock_file: {}\nbuilds:\n  lock_file: {}\n  detect: {detect}\n  retry: 1s\n  max_defer: 3m\n\
             policies:\n  - name: race\n    match:\n      labels: [stage=builder, \"{}\"]\n    min_age: 0s\n",
            self.dir
                .path()
                .join("run/stagesweep/stagesweep.lock")
                .display(),
            self.build_lock.display(),
            self.scope.selector()
        );
        std::fs::write(&path, text).expect("write config");
        path
    }

    /// Start `[wrapper…] docker build` with the classic builder (the engine's own CLI);
    /// output goes to the log.
    fn build(&self, wrapper: &[&str]) -> Child {
        let cli = support::matrix::docker_build(&self.context, &self.scope.tag("final"), false);
        let mut argv: Vec<String> = wrapper.iter().map(ToString::to_string).collect();
        argv.push(cli.get_program().to_string_lossy().into_owned());
        argv.extend(cli.get_args().map(|a| a.to_string_lossy().into_owned()));
        let envs = cli
            .get_envs()
            .filter_map(|(k, v)| Some((k.to_owned(), v?.to_owned())));
        let log = std::fs::File::create(&self.log).expect("log file");
        Command::new(&argv[0])
            .args(&argv[1..])
            .envs(envs)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log fd"))
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {argv:?}: {e}"))
    }

    fn build_log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Wait until the final stage's `RUN sleep` step runs (a container from a bare image ID).
    async fn wait_for_the_sleep_step(&self) {
        let started = Instant::now();
        let filters = HashMap::from([("label", vec![self.scope.selector()])]);
        loop {
            let opts = ListContainersOptionsBuilder::new()
                .filters(&filters)
                .build();
            let running = self.scope.docker.list_containers(Some(opts)).await;
            let sleeping = running.expect("list containers").into_iter().any(|c| {
                c.image.is_some_and(|i| i.starts_with("sha256:"))
                    && c.command.is_some_and(|cmd| cmd.contains("sleep"))
            });
            if sleeping {
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(180),
                "the RUN sleep step never ran; build log:\n{}",
                self.build_log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn builder_images(&self) -> usize {
        let images = self.scope.images().await;
        images
            .iter()
            .filter(|i| i.labels.get("stage").is_some_and(|v| v == "builder"))
            .count()
    }
}

/// `stagesweep prune --output json`: exit code, the JSON document, stderr.
async fn prune(config: &Path, extra: &[&str]) -> (i32, Value, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_stagesweep"))
        .env_remove("STAGESWEEP_CONFIG")
        .env("RUST_LOG", "info")
        .arg("--config")
        .arg(config)
        .args(["prune", "--output", "json"])
        .args(extra)
        .stdin(Stdio::null())
        .output()
        .await
        .expect("prune runs");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let json = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}); stderr:\n{stderr}"));
    (out.status.code().expect("exit code"), json, stderr)
}

/// The coordinated race: the build succeeds, the prune waits for it and deletes the builder
/// stage afterwards. Returns the prune's report.
async fn coordinated(race: &Race, wrapper: &[&str], detect: bool) -> Value {
    assert_eq!(race.builder_images().await, 0);
    let mut build = race.build(wrapper);
    race.wait_for_the_sleep_step().await;
    let (code, json, stderr) = prune(&race.config(detect), &[]).await;
    assert_eq!(code, 0, "prune failed:\n{stderr}");
    let status = build.wait().await.expect("build exits");
    assert!(
        status.success(),
        "the build broke:\n{}\nprune:\n{stderr}",
        race.build_log()
    );
    let deleted = json["summary"]["deleted"].as_u64().expect("deleted");
    assert!(deleted >= 2, "builder stage not deleted: {json}");
    assert_eq!(race.builder_images().await, 0);
    assert_eq!(json["builds"]["outcome"], "clear", "{json}");
    assert!(json["builds"]["deferrals"].as_u64() >= Some(1), "{json}");
    assert!(stderr.contains("a build is in progress"), "{stderr}");
    json
}

/// Skipped on podman4 and podman5 ([`skipped`]): Podman's build steps are not listed containers.
#[tokio::test(flavor = "multi_thread")]
async fn without_coordination_the_prune_breaks_the_build() {
    if skipped() {
        return;
    }
    let race = Race::new("race-none").await;
    let mut build = race.build(&[]);
    race.wait_for_the_sleep_step().await;
    let (code, json, stderr) = prune(&race.config(false), &[]).await;
    assert_eq!(code, 0, "{stderr}");
    assert!(json["summary"]["deleted"].as_u64() >= Some(2), "{json}");
    let status = build.wait().await.expect("build exits");
    let log = race.build_log();
    assert!(!status.success(), "the hazard did not show:\n{log}");
    assert!(
        log.contains("invalid from flag value builder") || log.contains("No such image"),
        "{log}"
    );
    race.scope.cleanup().await;
}

/// Skipped on podman4 and podman5 ([`skipped`]): Podman's build steps are not listed containers.
#[tokio::test(flavor = "multi_thread")]
async fn under_stagesweep_hold_the_build_succeeds_and_the_stage_goes_afterwards() {
    if skipped() {
        return;
    }
    let race = Race::new("race-hold").await;
    let lock = race.build_lock.display().to_string();
    let bin = env!("CARGO_BIN_EXE_stagesweep");
    let json = coordinated(&race, &[bin, "hold", "--lock-file", &lock, "--"], false).await;
    assert_eq!(json["builds"]["builds"][0]["kind"], "lock_held", "{json}");
    race.scope.cleanup().await;
}

/// Skipped on podman4 and podman5 ([`skipped`]): Podman's build steps are not listed containers.
#[tokio::test(flavor = "multi_thread")]
async fn under_flock_s_the_build_succeeds_and_the_stage_goes_afterwards() {
    if skipped() {
        return;
    }
    let race = Race::new("race-flock").await;
    let lock = race.build_lock.display().to_string();
    let json = coordinated(&race, &["flock", "-s", &lock], false).await;
    assert_eq!(json["builds"]["builds"][0]["kind"], "lock_held", "{json}");
    race.scope.cleanup().await;
}

/// Skipped on podman4 and podman5 ([`skipped`]): Podman's build steps are not listed containers.
#[tokio::test(flavor = "multi_thread")]
async fn detection_alone_keeps_the_build_alive() {
    if skipped() {
        return;
    }
    let race = Race::new("race-detect").await;
    let json = coordinated(&race, &[], true).await;
    assert_eq!(
        json["builds"]["builds"][0]["kind"], "classic_step",
        "{json}"
    );
    race.scope.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn no_wait_exits_4_and_max_defer_gives_up_while_a_build_holds_the_lock() {
    let scope = Scope::new("builds-cli").await;
    let label = scope.label();
    let old = Utc::now() - chrono::Duration::hours(5);
    load(
        &scope.docker,
        &[
            FixtureImage::new(&label, old),
            FixtureImage::new(&label, old),
        ],
    )
    .await;
    let dir = tempfile::tempdir().expect("temp dir");
    let build_lock = dir.path().join("run/builds.lock");
    let config = dir.path().join("config.yaml");
    // Detection off: the races in this binary run classic builds at the same time.
    std::fs::write(
        &config,
        format!(
            "history:\n  enabled: false\nlock_file: {}\nbuilds:\n  lock_file: {}\n  detect: false\n  retry: 1s\n  max_defer: 1s\n\
             policies:\n  - name: test\n    match:\n      labels: [\"{}\"]\n    min_age: 1h\n",
            dir.path().join("run/stagesweep.lock").display(),
            build_lock.display(),
            scope.selector()
        ),
    )
    .expect("write config");
    let build = BuildLock::shared(&build_lock, Some(Duration::ZERO), Duration::from_millis(10))
        .await
        .expect("a build holds the lock");

    let (code, json, stderr) = prune(&config, &["--no-wait"]).await;
    assert_eq!(code, 4, "{stderr}");
    assert_eq!(json["builds"]["outcome"], "no_wait", "{json}");
    assert_eq!(json["summary"]["deferred"], 2, "{json}");
    let (code, json, stderr) = prune(&config, &[]).await;
    assert_eq!(code, 4, "{stderr}");
    assert_eq!(json["builds"]["outcome"], "expired", "{json}");
    assert!(stderr.contains("skipping them in this pass"), "{stderr}");
    assert_eq!(scope.images().await.len(), 2, "nothing deleted");

    drop(build);
    let (code, json, stderr) = prune(&config, &["--no-wait"]).await;
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(json["summary"]["deleted"], 2, "{json}");
    assert_eq!(json["builds"]["deferrals"], 0, "{json}");
    scope.cleanup().await;
}
