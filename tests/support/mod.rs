//! The test support every test binary includes once (`#[path = "../support/mod.rs"]`): here,
//! the engine under test (connect, or fail with the way out), a per-test label scope that
//! cleans up after itself, containers; in the modules, one copy of each helper the tests share.
//!
//! Tests may use bollard directly here; only `src/` keeps bollard inside `engine::docker`.
//! Engine tests never use the system's default socket: `DOCKER_HOST` must name the daemon.
#![allow(dead_code)] // each test crate uses a different subset

// Images and whole passes: fixtures, builds, the fake engine's passes, fake Engine APIs.
pub mod fake_api;
pub mod fixture;
pub mod images;
pub mod matrix;
pub mod passes;
pub mod quick_release;
pub mod registry;

// The built binary: the CLI, the agent as a process, its HTTP listener, the tools it meets.
pub mod agent_proc;
pub mod cli;
pub mod http;
pub mod tools;

// Fault suite (issue 13): fake and proxied engines, a daemon of a test's own.
pub mod accounting;
pub mod daemon;
pub mod fault_server;
pub mod gate_proxy;
pub mod tcp_proxy;

use std::collections::HashMap;
use std::time::Duration;

use bollard::Docker;
use bollard::models::{ContainerCreateBody, HostConfig, ImageSummary};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, ListContainersOptionsBuilder, ListImagesOptionsBuilder,
    RemoveContainerOptionsBuilder, RemoveImageOptionsBuilder,
};
use rand::Rng;
use stagesweep::config::DockerConfig;
use stagesweep::engine::docker::{DockerEngine, connect};

/// What to do when no daemon answers.
pub const HOW_TO_START: &str =
    "run scripts/test.sh, which starts a private dockerd, or set DOCKER_HOST";

/// The label key every test image carries (value unique per test run).
pub const TEST_LABEL: &str = "stagesweep.test";

/// The family of the engine behind `DOCKER_HOST` (`STAGESWEEP_TEST_ENGINE`; which engine of
/// the matrix exactly, and what it can do: [`matrix::engine`]). Tests read it for what differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TestEngine {
    Docker,
    Podman,
}

pub fn test_engine() -> TestEngine {
    matrix::engine().family()
}

/// How the engine under test reports a tag it was given when loading an image: Podman
/// qualifies names without a registry with `localhost/` (images it builds through the Docker
/// API become `docker.io/…`), Docker keeps them as given.
pub fn reported(tag: &str) -> String {
    match test_engine() {
        TestEngine::Podman if !stagesweep::reference::has_registry(tag) => {
            format!("localhost/{tag}")
        }
        _ => tag.to_owned(),
    }
}

/// `$DOCKER_HOST`, the engine under test; panics with the way out when it is not set.
pub fn docker_host() -> String {
    match std::env::var("DOCKER_HOST") {
        Ok(h) if !h.trim().is_empty() => h,
        _ => panic!("engine tests need a docker daemon and DOCKER_HOST is not set: {HOW_TO_START}"),
    }
}

/// The engine under test, at `$DOCKER_HOST`; panics with the way out when unreachable.
pub async fn engine_or_fail() -> DockerEngine {
    let host = docker_host();
    let cfg = DockerConfig {
        host: Some(host),
        timeout: Duration::from_secs(30),
        ..DockerConfig::default()
    };
    match connect(&cfg).await {
        Ok(engine) => engine,
        Err(e) => panic!("engine tests need a docker daemon: {e}; {HOW_TO_START}"),
    }
}

/// A raw bollard client at `$DOCKER_HOST`, for setting up and inspecting.
pub async fn docker_or_fail() -> Docker {
    let host = docker_host();
    let docker = Docker::connect_with_defaults()
        .unwrap_or_else(|e| panic!("cannot use DOCKER_HOST={host}: {e}; {HOW_TO_START}"));
    docker
        .negotiate_version()
        .await
        .unwrap_or_else(|e| panic!("no docker daemon answers at {host}: {e}; {HOW_TO_START}"))
}

/// One test's world: a unique label that every image and container it makes carries, and
/// a cleanup that removes exactly those (force allowed here only). Call [`Scope::cleanup`]
/// at the end; `Drop` cleans up too when a test panics first.
pub struct Scope {
    pub docker: Docker,
    /// Label value, `<test>-<random>`.
    pub id: String,
    cleaned: bool,
}

impl Scope {
    pub async fn new(test: &str) -> Scope {
        let docker = docker_or_fail().await;
        let id = format!("{test}-{:08x}", rand::rng().random::<u32>());
        Scope {
            docker,
            id,
            cleaned: false,
        }
    }

    /// `(key, value)` of the test label.
    pub fn label(&self) -> (String, String) {
        (TEST_LABEL.to_owned(), self.id.clone())
    }

    /// `stagesweep.test=<id>`, as a label predicate / filter.
    pub fn selector(&self) -> String {
        format!("{TEST_LABEL}={}", self.id)
    }

    /// A unique `repo:tag` for this test.
    pub fn tag(&self, name: &str) -> String {
        format!("stagesweep-test/{}-{name}:1", self.id)
    }

    /// All images (intermediate included) carrying this test's label.
    pub async fn images(&self) -> Vec<ImageSummary> {
        images_with_label(&self.docker, &self.selector()).await
    }

    pub async fn cleanup(mut self) {
        purge(&self.docker, &self.selector()).await;
        self.cleaned = true;
    }
}

impl Drop for Scope {
    fn drop(&mut self) {
        if self.cleaned {
            return;
        }
        let selector = self.selector();
        // Drop cannot await: clean up on a thread with its own runtime and client.
        let done = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a current-thread runtime builds");
            rt.block_on(async {
                if let Ok(docker) = Docker::connect_with_defaults() {
                    purge(&docker, &selector).await;
                }
            });
        })
        .join();
        if done.is_err() {
            eprintln!("cleanup of {TEST_LABEL}={} panicked", self.id);
        }
    }
}

/// Remove every container and image carrying `selector` (`key=value`), forcefully.
async fn purge(docker: &Docker, selector: &str) {
    let filters = HashMap::from([("label", vec![selector])]);
    let opts = ListContainersOptionsBuilder::new()
        .all(true)
        .filters(&filters)
        .build();
    for c in docker.list_containers(Some(opts)).await.unwrap_or_default() {
        let rm = RemoveContainerOptionsBuilder::new().force(true).build();
        let _ = docker
            .remove_container(&c.id.unwrap_or_default(), Some(rm))
            .await;
    }
    // Children before parents: retry rounds until nothing with the label is left.
    for _ in 0..20 {
        let images = images_with_label(docker, selector).await;
        if images.is_empty() {
            return;
        }
        for img in images {
            let rm = RemoveImageOptionsBuilder::new().force(true).build();
            let _ = docker.remove_image(&img.id, Some(rm), None).await;
        }
    }
    eprintln!("cleanup: images labelled {selector} are left behind");
}

/// Images (all=true) matching a `key=value` label filter.
pub async fn images_with_label(docker: &Docker, selector: &str) -> Vec<ImageSummary> {
    list_images(docker, Some(selector)).await
}

/// Every image ID now present (all=true).
pub async fn all_image_ids(docker: &Docker) -> Vec<String> {
    let images = list_images(docker, None).await;
    images.into_iter().map(|i| i.id).collect()
}

/// `GET /images/json?all=true` (with a label filter), tried again while another test's
/// deletion gets in the way: the containerd image store answers 404 "content digest …
/// not found", Podman 4.3 "image not known", when an image goes while they list.
pub async fn list_images(docker: &Docker, selector: Option<&str>) -> Vec<ImageSummary> {
    let filters: HashMap<&str, Vec<&str>> = selector
        .map(|s| HashMap::from([("label", vec![s])]))
        .unwrap_or_default();
    let opts = ListImagesOptionsBuilder::new()
        .all(true)
        .filters(&filters)
        .build();
    let mut attempt = 0;
    loop {
        match docker.list_images(Some(opts.clone())).await {
            Ok(images) => return images,
            Err(bollard::errors::Error::DockerResponseServerError { message, .. })
                if attempt < 5
                    && (message.contains("content digest")
                        || message.contains("image not known")) =>
            {
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("listing images: {e}"),
        }
    }
}

/// `docker create` (not start) a container from `image`, labelled with the scope's label.
pub async fn create_container(scope: &Scope, image: &str) -> String {
    let body = ContainerCreateBody {
        image: Some(image.to_owned()),
        cmd: Some(vec!["/bin/true".to_owned()]),
        labels: Some(HashMap::from([scope.label()])),
        host_config: Some(HostConfig {
            network_mode: Some("none".to_owned()),
            ..HostConfig::default()
        }),
        ..ContainerCreateBody::default()
    };
    let name = format!("{}-{:04x}", scope.id, rand::rng().random::<u16>());
    let opts = CreateContainerOptionsBuilder::new().name(&name).build();
    let created = scope
        .docker
        .create_container(Some(opts), body)
        .await
        .expect("creating a container");
    created.id
}

/// The parent chain of `id`, starting with `id` itself (from `list_images(all=true)`).
pub async fn chain(docker: &Docker, id: &str) -> Vec<String> {
    let images = list_images(docker, None).await;
    // Podman gives parents as bare hex: compare in the `sha256:` form.
    let full = |id: String| {
        if id.is_empty() || id.starts_with("sha256:") {
            id
        } else {
            format!("sha256:{id}")
        }
    };
    let parents: HashMap<String, String> = images
        .into_iter()
        .map(|i| (full(i.id), full(i.parent_id)))
        .collect();
    let mut out = vec![id.to_owned()];
    let mut cur = id.to_owned();
    while let Some(p) = parents.get(&cur).filter(|p| !p.is_empty()) {
        out.push(p.clone());
        cur = p.clone();
    }
    out
}
