//! The engine of the CI matrix a test faces (`STAGESWEEP_TEST_ENGINE`, set by each lane of
//! `scripts/test.sh`), what it can do, the docker CLI that drives builds on it, and visible
//! skips for the tests that cannot run on it.
//!
//! The matrix (`MATRIX`, whose names `docs/engines.md` and `scripts/test.sh` share): Docker
//! 20.10 (Debian's, overlay2), Docker 28.5 on overlay2 and on the containerd image store, and
//! Podman 4.3 and 5.8 (`scripts/engines/`). `docker` and `podman` still name the first of
//! each family.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

use super::{TestEngine, docker_host};

/// One engine of the matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Matrix {
    /// Debian bookworm's dockerd 20.10 (API 1.41), overlay2 (`scripts/dockerd.sh`).
    Docker20,
    /// Debian sid's dockerd 28.5 (API 1.51), overlay2 (`scripts/engines/docker28.sh`).
    Docker28,
    /// Docker 28.5 on the containerd image store.
    Docker28Containerd,
    /// Debian bookworm's Podman 4.3 (API 1.41; `scripts/podman.sh`).
    Podman4,
    /// Debian sid's Podman 5.8 (API 1.44; `scripts/engines/podman5.sh`).
    Podman5,
}

/// Every engine of the matrix, in the order of `scripts/test.sh`'s lanes.
pub const MATRIX: [Matrix; 5] = [
    Matrix::Docker20,
    Matrix::Docker28,
    Matrix::Docker28Containerd,
    Matrix::Podman4,
    Matrix::Podman5,
];

impl Matrix {
    /// The name `STAGESWEEP_TEST_ENGINE` gives it (and the lane's name).
    pub fn name(self) -> &'static str {
        match self {
            Matrix::Docker20 => "docker20",
            Matrix::Docker28 => "docker28",
            Matrix::Docker28Containerd => "docker28-containerd",
            Matrix::Podman4 => "podman4",
            Matrix::Podman5 => "podman5",
        }
    }

    /// A `STAGESWEEP_TEST_ENGINE` value: a name of [`MATRIX`], or a family (`docker` is
    /// Docker 20.10, `podman` Podman 4.3, the engines Debian bookworm installs).
    pub fn parse(value: &str) -> Option<Matrix> {
        match value {
            "" | "docker" => Some(Matrix::Docker20),
            "podman" => Some(Matrix::Podman4),
            other => MATRIX.into_iter().find(|m| m.name() == other),
        }
    }

    pub fn family(self) -> TestEngine {
        match self {
            Matrix::Docker20 | Matrix::Docker28 | Matrix::Docker28Containerd => TestEngine::Docker,
            Matrix::Podman4 | Matrix::Podman5 => TestEngine::Podman,
        }
    }

    /// The start of the version the engine reports (`/version` `Version`).
    pub fn version_prefix(self) -> &'static str {
        match self {
            Matrix::Docker20 => "20.10.",
            Matrix::Docker28 | Matrix::Docker28Containerd => "28.5.",
            Matrix::Podman4 => "4.3.",
            Matrix::Podman5 => "5.8.",
        }
    }

    /// Images live in containerd's image store: IDs are manifest digests, every tagged
    /// image has a `RepoDigests` entry.
    pub fn containerd_store(self) -> bool {
        self == Matrix::Docker28Containerd
    }

    /// The engine dates every image by when it arrived: the containerd image store sets
    /// `Metadata.LastTagTime` when an image is loaded, pulled or built, untagged ones
    /// included. A loaded fixture's age then counts from its load whenever a pass asks
    /// (it inspects the tagged images it would delete, and those of unknown age), whatever
    /// its `Created` says.
    pub fn dates_arrivals(self) -> bool {
        self.containerd_store()
    }

    /// Deleting an image also deletes its untagged parents left without children, whatever
    /// `noprune` says (Podman 4.3; Podman 5.8 and Docker honour it).
    pub fn deletes_untagged_parents(self) -> bool {
        self == Matrix::Podman4
    }

    /// `Metadata.LastTagTime` in image inspect (Docker); Podman reports none.
    pub fn reports_tag_times(self) -> bool {
        self.family() == TestEngine::Docker
    }

    /// The classic builder runs each `RUN` step as a container the API lists, from the bare
    /// image ID of the step before (Docker). Podman builds with buildah: its steps are
    /// external containers that `/containers/json` does not list — and Podman refuses (409)
    /// to delete the images they use, so a prune cannot break its builds.
    pub fn build_steps_are_listed_containers(self) -> bool {
        self.family() == TestEngine::Docker
    }

    /// BuildKit builds and a build cache behind `/system/df` and `/build/prune` (Docker;
    /// Podman builds with buildah and answers `/build/prune` with 404).
    pub fn buildkit(self) -> bool {
        self.family() == TestEngine::Docker
    }

    /// The engine refuses (409) to delete an image that has child images. Docker on
    /// overlay2 does; the containerd image store and Podman delete the parent and leave the
    /// child's `ParentId` naming a deleted image.
    pub fn refuses_parents_with_children(self) -> bool {
        matches!(self, Matrix::Docker20 | Matrix::Docker28)
    }
}

/// The engine behind `DOCKER_HOST`, as `STAGESWEEP_TEST_ENGINE` names it.
pub fn engine() -> Matrix {
    let value = std::env::var("STAGESWEEP_TEST_ENGINE").unwrap_or_default();
    Matrix::parse(&value).unwrap_or_else(|| {
        let names: Vec<&str> = MATRIX.iter().map(|m| m.name()).collect();
        panic!(
            "STAGESWEEP_TEST_ENGINE={value:?}: use one of {} (or docker, podman)",
            names.join(", ")
        )
    })
}

/// Skip the calling test on this engine when `cond` holds, saying why: the line
/// `SKIPPED <test> on <engine>: <why>` goes to the process's stderr past the test harness's
/// capture, so the lane's log shows it (and `scripts/test.sh` counts it). Returns `cond`.
pub fn skip_if(cond: bool, why: &str) -> bool {
    if cond {
        let current = std::thread::current();
        let test = current.name().unwrap_or("a test");
        let line = format!("SKIPPED {test} on {}: {why}\n", engine().name());
        // Not eprintln!: libtest captures that for passing tests.
        let _ = std::io::stderr().write_all(line.as_bytes());
    }
    cond
}

/// The docker CLI for this engine: Debian's 20.10 (`/usr/bin/docker`, BuildKit through
/// `DOCKER_BUILDKIT=1`) for Docker 20.10 and the Podmans; for Docker 28.5 the 28.5 CLI with
/// its buildx plugin, from `PATH` and `DOCKER_CONFIG` as `. DIR/env` of
/// `scripts/engines/docker28.sh` sets them (checked once; the test fails saying so when they
/// are not). `DOCKER_HOST` is set to the engine under test.
pub fn docker_cli() -> Command {
    let program = match engine() {
        Matrix::Docker28 | Matrix::Docker28Containerd => docker28_cli().clone(),
        _ => PathBuf::from(DEBIAN_CLI),
    };
    assert!(
        program.exists(),
        "{} is missing: install Debian's docker.io (.ci/run does)",
        program.display()
    );
    let mut cmd = Command::new(program);
    cmd.env("DOCKER_HOST", docker_host());
    cmd
}

/// Debian's docker CLI (20.10).
pub const DEBIAN_CLI: &str = "/usr/bin/docker";

/// The 28.5 CLI on `PATH`, with buildx in `DOCKER_CONFIG`; panics with the way out.
fn docker28_cli() -> &'static PathBuf {
    static CLI: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let found = CLI.get_or_init(|| {
        let how = "source DIR/env of scripts/engines/docker28.sh (set -a; . DIR/env; set +a), \
                   as scripts/test.sh does for its docker28 lanes";
        let path = std::env::var_os("PATH").unwrap_or_default();
        let cli = std::env::split_paths(&path)
            .map(|d| d.join("docker"))
            .find(|p| p.is_file())
            .ok_or_else(|| format!("no docker CLI on PATH: {how}"))?;
        let version = Command::new(&cli)
            .args(["version", "--format", "{{.Client.Version}}"])
            .env("DOCKER_HOST", docker_host())
            .output()
            .map_err(|e| format!("cannot run {}: {e}", cli.display()))?;
        let version = String::from_utf8_lossy(&version.stdout).trim().to_owned();
        if !version.starts_with("28.") {
            return Err(format!(
                "{} is docker {version:?}, not 28.x: {how}",
                cli.display()
            ));
        }
        let buildx = Command::new(&cli)
            .args(["buildx", "version"])
            .output()
            .map_err(|e| format!("cannot run {} buildx: {e}", cli.display()))?;
        if !buildx.status.success() {
            return Err(format!(
                "{} has no buildx plugin (DOCKER_CONFIG={:?}): {how}",
                cli.display(),
                std::env::var("DOCKER_CONFIG").unwrap_or_default()
            ));
        }
        Ok(cli)
    });
    found.as_ref().unwrap_or_else(|e| panic!("{e}"))
}

/// `docker build` with BuildKit (`DOCKER_BUILDKIT=1`; buildx on 28.5) or the classic
/// builder, `--network none`, of `dir`, tagged `tag`: not yet run.
pub fn docker_build(dir: &std::path::Path, tag: &str, buildkit: bool) -> Command {
    let mut cmd = docker_cli();
    cmd.env("DOCKER_BUILDKIT", if buildkit { "1" } else { "0" })
        .args(["build", "--network", "none", "-t", tag])
        .arg(dir);
    if buildkit {
        cmd.args(["--progress", "plain"]);
    }
    cmd
}
