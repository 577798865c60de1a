//! A dockerd of the test's own (scripts/dockerd.sh flags, in a temp dir under /tmp: socket
//! paths are limited to 108 bytes), for tests that must stop, kill and restart their daemon,
//! or give it a small disk; or a Docker 28.5 of its own on the containerd image store
//! (scripts/engines/docker28.sh, after `scripts/engines/fetch.sh`), with containerd's root
//! on a small tmpfs. The shared test daemon (`DOCKER_HOST`) is never touched. Stopped and
//! removed on drop.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use bollard::Docker;

pub struct OwnDaemon {
    /// The daemon's directory (data root, exec root, pidfile, socket).
    pub dir: PathBuf,
    /// `unix://…/docker.sock`.
    pub host: String,
    tmp: tempfile::TempDir,
    /// The script that starts and stops it.
    script: PathBuf,
    /// containerd's root on a tmpfs the test mounted (Docker 28.5 on the containerd store).
    pub containerd_root: Option<PathBuf>,
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/dockerd.sh")
}

fn docker28_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/engines/docker28.sh")
}

fn run_script(script: &Path, args: &[&std::ffi::OsStr]) -> String {
    try_script(script, args).unwrap_or_else(|e| panic!("{e}"))
}

fn try_script(script: &Path, args: &[&std::ffi::OsStr]) -> Result<String, String> {
    let out = Command::new(script)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("run {}: {e}", script.display()));
    if !out.status.success() {
        let dir = Path::new(args.get(1).copied().unwrap_or_default());
        let log = std::fs::read_to_string(dir.join("dockerd.log")).unwrap_or_default();
        let problems: Vec<&str> = log.lines().filter(|l| !l.contains("level=info")).collect();
        return Err(format!(
            "{} {args:?} failed (starting a dockerd needs root; Docker 28.5 needs scripts/engines/fetch.sh first): {}\nnot-info lines of dockerd.log:\n{}",
            script.display(),
            String::from_utf8_lossy(&out.stderr),
            problems.join("\n")
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// Mount a tmpfs of `size` (`96m`) at `dir`, created first.
fn mount_tmpfs(dir: &Path, size: &str) {
    std::fs::create_dir_all(dir).expect("mount point");
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
        .arg(dir)
        .status()
        .expect("run mount");
    assert!(
        mounted.success(),
        "mount -t tmpfs failed (the tests run as root)"
    );
}

/// True while `pid` runs (a zombie does not count).
fn alive(pid: u32) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    !stat.is_empty() && stat.split_whitespace().nth(2) != Some("Z")
}

impl OwnDaemon {
    /// Start a fresh daemon and wait until it answers.
    pub fn start(name: &str) -> OwnDaemon {
        Self::start_on(name, None)
    }

    /// Start a fresh daemon whose data root is a tmpfs of `size` (`96m`), mounted first.
    pub fn start_on_tmpfs(name: &str, size: &str) -> OwnDaemon {
        Self::start_on(name, Some(size))
    }

    fn start_on(name: &str, tmpfs: Option<&str>) -> OwnDaemon {
        let base = tempfile::Builder::new()
            .prefix(&format!("ss-{name}-"))
            .tempdir_in("/tmp")
            .expect("temp dir");
        let dir = base.path().join("d");
        if let Some(size) = tmpfs {
            // scripts/dockerd.sh stop unmounts everything under the directory, this too.
            mount_tmpfs(&dir.join("data"), size);
        }
        // Built first, so that a failed start is stopped (and unmounted) on drop.
        let mut daemon = OwnDaemon {
            dir,
            host: String::new(),
            tmp: base,
            script: script(),
            containerd_root: None,
        };
        daemon.host = daemon.run("start");
        daemon
    }

    /// Start a fresh Docker 28.5 on the containerd image store whose containerd root is a
    /// tmpfs of `size` the test mounts (scripts/engines/docker28.sh; scripts/engines/fetch.sh
    /// must have run), and wait until it answers. [`OwnDaemon::cli`] is its CLI with buildx.
    pub fn start_docker28_containerd(name: &str, size: &str) -> OwnDaemon {
        let base = tempfile::Builder::new()
            .prefix(&format!("ss-{name}-"))
            .tempdir_in("/tmp")
            .expect("temp dir");
        let root = base.path().join("croot");
        mount_tmpfs(&root, size);
        let mut daemon = OwnDaemon {
            dir: base.path().join("d"),
            host: String::new(),
            tmp: base,
            script: docker28_script(),
            containerd_root: Some(root.clone()),
        };
        let args = [
            "start".as_ref(),
            daemon.dir.as_os_str(),
            "containerd".as_ref(),
            root.as_os_str(),
        ];
        daemon.host = run_script(&daemon.script, &args);
        daemon
    }

    /// The docker CLI for this daemon: Docker 28.5's with buildx when it is one (its
    /// `DIR/env`), else the system's; `DOCKER_HOST` set.
    pub fn cli(&self) -> Command {
        let own = self.dir.join("bin/docker");
        let mut cmd = if own.exists() {
            let mut cmd = Command::new(own);
            cmd.env("DOCKER_CONFIG", self.dir.join("docker-config"));
            cmd
        } else {
            Command::new("docker")
        };
        cmd.env("DOCKER_HOST", &self.host);
        cmd
    }

    fn run(&self, action: &str) -> String {
        run_script(&self.script, &[action.as_ref(), self.dir.as_os_str()])
    }

    /// The temp dir the daemon's directory is in: room for the test's own files.
    pub fn base(&self) -> &Path {
        self.tmp.path()
    }

    /// dockerd's pid (its own pidfile).
    pub fn pid(&self) -> u32 {
        let text = std::fs::read_to_string(self.dir.join("docker.pid")).expect("dockerd pidfile");
        text.trim().parse().expect("a pid")
    }

    /// Stop the daemon and its containerd (scripts/dockerd.sh stop): its directory goes too,
    /// a [`OwnDaemon::restart`] starts a fresh one on the same socket.
    pub fn stop(&self) {
        self.run("stop");
    }

    /// SIGTERM dockerd and wait until it has exited; its data root stays for a restart.
    pub fn shut_down(&self) {
        let pid = std::fs::read_to_string(self.dir.join("dockerd.launcher.pid")).expect("pid file");
        let pid: u32 = pid.trim().parse().expect("a pid");
        let _ = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status();
        let start = Instant::now();
        while alive(pid) {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "dockerd ignores SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// SIGKILL dockerd (its containerd lives on, as after a real crash) and wait until it is gone.
    pub fn kill9(&self) {
        let pid = self.pid();
        let ok = Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status()
            .expect("run kill");
        assert!(ok.success(), "kill -KILL {pid}");
        let start = Instant::now();
        while Path::new(&format!("/proc/{pid}")).exists() {
            // A zombie until the script's shell (its parent) is gone; /proc/PID/stat says so.
            let proc_stat =
                std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            if proc_stat.split_whitespace().nth(2) == Some("Z") {
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "dockerd {pid} survived SIGKILL"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Start dockerd again on the same directory (same data, same socket). The killed daemon's
    /// pidfile is removed first, as a service manager does after a crash: a killed dockerd
    /// whose parent never reaps it stays a zombie, and dockerd refuses a pidfile naming a
    /// process that still exists.
    ///
    /// dockerd's containerd dies with it; its files (and the lock on its database) go when it
    /// has exited, so the restart waits for that, and, like a service manager, tries up to
    /// three times (a busy machine can exceed dockerd's wait for a fresh containerd).
    pub fn restart(&self) {
        let containerd = std::fs::read_to_string(self.dir.join("exec/containerd/containerd.pid"))
            .ok()
            .and_then(|p| p.trim().parse::<u32>().ok());
        let start = Instant::now();
        while containerd.is_some_and(alive) && start.elapsed() < Duration::from_secs(30) {
            std::thread::sleep(Duration::from_millis(100));
        }
        let mut last = String::new();
        for _ in 0..3 {
            let _ = std::fs::remove_file(self.dir.join("docker.pid"));
            match try_script(&self.script, &["start".as_ref(), self.dir.as_os_str()]) {
                Ok(host) => {
                    assert_eq!(host, self.host, "same socket after a restart");
                    return;
                }
                Err(e) => last = e,
            }
        }
        panic!("dockerd did not restart three times: {last}");
    }

    /// A bollard client for setting up and inspecting.
    pub async fn client(&self) -> Docker {
        // Generous: loading hundreds of fixtures takes a while on a busy machine.
        self.client_with_timeout(600).await
    }

    /// A bollard client whose requests time out after `secs`.
    pub async fn client_with_timeout(&self, secs: u64) -> Docker {
        Docker::connect_with_unix(&self.host, secs, bollard::API_DEFAULT_VERSION)
            .expect("client")
            .negotiate_version()
            .await
            .expect("the own daemon answers")
    }
}

impl Drop for OwnDaemon {
    fn drop(&mut self) {
        if self.dir.exists() {
            let _ = Command::new(&self.script)
                .arg("stop")
                .arg(&self.dir)
                .output();
        }
        // docker28.sh stop empties containerd's root and leaves our mount to us.
        if let Some(root) = &self.containerd_root {
            let _ = Command::new("umount").arg(root).status();
        }
    }
}

/// A tmpfs a test mounts for itself (a small filesystem to fill), unmounted on drop.
pub struct Tmpfs {
    pub path: PathBuf,
    _dir: tempfile::TempDir,
}

impl Tmpfs {
    /// Mount a tmpfs of `size` (`64m`) on a new temp dir.
    pub fn mount(size: &str) -> Tmpfs {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("fs");
        mount_tmpfs(&path, size);
        Tmpfs { path, _dir: dir }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.path).status();
    }
}
