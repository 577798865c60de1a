//! The systemd units: `systemd-analyze verify` finds no error, `systemd-analyze security`
//! scores each service at most 1.5, the units, tmpfiles.d and sysusers.d entries agree on
//! the runtime directory, and the built binary speaks the `Type=notify` protocol (READY=1,
//! STATUS=, STOPPING=1) on a `NOTIFY_SOCKET` of our own. `tests/package.rs` starts the
//! packaged units under a real systemd.

use crate::support;

use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use support::agent_proc::AgentProc;
use support::{docker_host, tools};

const UNITS: [&str; 3] = [
    "stagesweep.service",
    "stagesweep-prune.service",
    "stagesweep-prune.timer",
];
const MAX_EXPOSURE: f64 = 1.5;

fn units_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("systemd")
}

/// The units with `/usr/bin/stagesweep` (the package's path) pointed at the binary cargo built, in a temp
/// dir, so that `verify` checks the real command line instead of a missing path.
fn rewritten_units() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    for unit in UNITS {
        let text = std::fs::read_to_string(units_dir().join(unit)).expect("read unit");
        assert!(
            !unit.ends_with(".service") || text.contains("/usr/bin/stagesweep "),
            "{unit} must run /usr/bin/stagesweep"
        );
        let text = text.replace("/usr/bin/stagesweep", env!("CARGO_BIN_EXE_stagesweep"));
        std::fs::write(dir.path().join(unit), text).expect("write unit");
    }
    dir
}

#[test]
fn units_verify_without_errors() {
    let dir = rewritten_units();
    let paths: Vec<String> = UNITS.iter().map(|u| format!("./{u}")).collect();
    // The man page is checked in the package (tests/package.rs), not installed here.
    let mut args = vec!["verify", "--man=no"];
    args.extend(paths.iter().map(String::as_str));
    let (ok, text) = tools::systemd_analyze(&args, dir.path());
    // Messages about the host (no systemd as PID 1, docker.service not installed here)
    // are not unit errors; anything naming one of our units is.
    let ours: Vec<&str> = text
        .lines()
        .filter(|l| UNITS.iter().any(|u| l.contains(u)))
        .collect();
    assert!(
        ours.is_empty(),
        "systemd-analyze verify complained:\n{text}"
    );
    assert!(ok, "systemd-analyze verify failed:\n{text}");
}

#[test]
fn services_score_at_most_1_5_in_systemd_analyze_security() {
    let dir = rewritten_units();
    for unit in UNITS.iter().filter(|u| u.ends_with(".service")) {
        let (_, text) = tools::systemd_analyze(
            &["security", "--offline=true", &format!("./{unit}")],
            dir.path(),
        );
        let score =
            exposure(&text).unwrap_or_else(|| panic!("no exposure score for {unit}:\n{text}"));
        assert!(
            score <= MAX_EXPOSURE,
            "{unit} scores {score} > {MAX_EXPOSURE}:\n{text}"
        );
    }
}

/// `→ Overall exposure level for x.service: 1.3 OK 🙂` → 1.3
fn exposure(text: &str) -> Option<f64> {
    let line = text
        .lines()
        .find(|l| l.contains("Overall exposure level"))?;
    let after = line.rsplit_once(": ")?.1;
    after.split_whitespace().next()?.parse().ok()
}

fn unit_lines(name: &str) -> Vec<String> {
    std::fs::read_to_string(units_dir().join(name))
        .expect("unit")
        .lines()
        .map(str::to_owned)
        .collect()
}

/// The unit and the image set the same malloc thresholds, and glibc knows their names (it
/// ignores unknown tunables without a word).
#[test]
fn the_unit_and_the_image_set_the_same_known_malloc_tunables() {
    let unit = unit_lines("stagesweep.service");
    let in_unit = (unit.iter())
        .find_map(|l| l.strip_prefix("Environment=GLIBC_TUNABLES="))
        .expect("the agent unit sets GLIBC_TUNABLES");
    let dockerfile =
        std::fs::read_to_string(units_dir().join("../Dockerfile")).expect("Dockerfile");
    let in_image = (dockerfile.lines())
        .find_map(|l| l.strip_prefix("ENV GLIBC_TUNABLES="))
        .expect("the image sets GLIBC_TUNABLES");
    assert_eq!(in_unit, in_image);
    let loader = if cfg!(target_arch = "aarch64") {
        "/lib/ld-linux-aarch64.so.1"
    } else {
        "/lib64/ld-linux-x86-64.so.2"
    };
    let out = Command::new(loader)
        .arg("--list-tunables")
        .output()
        .expect("run the dynamic loader");
    let known = String::from_utf8_lossy(&out.stdout);
    for setting in in_unit.split(':') {
        let (name, value) = setting.split_once('=').expect("name=value");
        assert!(
            known.lines().any(|l| l.starts_with(&format!("{name}:"))),
            "glibc does not know {name}:\n{known}"
        );
        value.parse::<u64>().expect("a number of bytes");
    }
}

#[test]
fn agent_unit_has_the_notify_reload_restart_and_lock_settings() {
    let lines = unit_lines("stagesweep.service");
    for needle in [
        "Type=notify",
        "After=docker.service docker.socket",
        "Restart=on-failure",
        "RestartPreventExitStatus=2",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "ExecStart=/usr/bin/stagesweep agent --config /etc/stagesweep/config.yaml",
        "WatchdogSec=",
        "TimeoutStopSec=45s",
        "RuntimeDirectory=stagesweep",
        "StateDirectory=stagesweep",
    ] {
        assert!(
            lines.iter().any(|l| l.starts_with(needle)),
            "missing {needle}"
        );
    }
    let timer = std::fs::read_to_string(units_dir().join("stagesweep-prune.timer")).expect("timer");
    assert!(timer.contains("OnCalendar="));
}

#[test]
fn services_never_pull_docker_in_and_use_the_packaged_user_and_runtime_dir() {
    let tmpfiles =
        std::fs::read_to_string(units_dir().join("stagesweep.tmpfiles")).expect("tmpfiles");
    let dir_line: Vec<&str> = tmpfiles
        .lines()
        .find(|l| l.starts_with("d /run/stagesweep "))
        .expect("tmpfiles.d creates /run/stagesweep")
        .split_whitespace()
        .collect();
    let (mode, user, group) = (dir_line[2], dir_line[3], dir_line[4]);
    assert_eq!(mode, "2775", "group docker may create and lock files there");
    let sysusers =
        std::fs::read_to_string(units_dir().join("stagesweep.sysusers")).expect("sysusers");
    assert!(
        sysusers
            .lines()
            .any(|l| l.starts_with(&format!("u {user} ")))
    );
    assert!(
        sysusers
            .lines()
            .any(|l| l.starts_with(&format!("g {group} ")))
    );
    for unit in ["stagesweep.service", "stagesweep-prune.service"] {
        let lines = unit_lines(unit);
        for needle in [
            format!("User={user}"),
            format!("Group={group}"),
            "RuntimeDirectory=stagesweep".to_owned(),
            format!("RuntimeDirectoryMode={mode}"),
            "RuntimeDirectoryPreserve=yes".to_owned(),
            "After=docker.service docker.socket".to_owned(),
        ] {
            assert!(lines.contains(&needle), "{unit}: missing {needle}");
        }
        for banned in ["DynamicUser=", "Wants=", "Requires=", "BindsTo="] {
            assert!(
                !lines.iter().any(|l| l.starts_with(banned)),
                "{unit}: {banned} (a stopped docker must stay stopped; the user is static)"
            );
        }
    }
    // The lock the units share is the configuration's default.
    let default = stagesweep::config::embedded_default();
    assert_eq!(
        default.agent.lock_file.parent(),
        Some(Path::new("/run/stagesweep"))
    );
    assert!(tmpfiles.contains(&format!(
        "f {} 0660 {user} {group}",
        default.agent.lock_file.display()
    )));
}

/// Collect datagrams until `done` says so or `limit` passes.
fn collect(sock: &UnixDatagram, limit: Duration, done: impl Fn(&[String]) -> bool) -> Vec<String> {
    let mut got = Vec::new();
    let deadline = Instant::now() + limit;
    let mut buf = [0u8; 4096];
    while !done(&got) && Instant::now() < deadline {
        if let Ok(n) = sock.recv(&mut buf) {
            got.extend(
                String::from_utf8_lossy(&buf[..n])
                    .lines()
                    .map(str::to_owned),
            );
        }
    }
    got
}

#[test]
fn agent_speaks_the_notify_protocol() {
    let host = docker_host();
    let dir = tempfile::tempdir().expect("temp dir");
    let sock_path = dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).expect("bind notify socket");
    sock.set_read_timeout(Some(Duration::from_millis(200)))
        .expect("timeout");
    let config = format!(
        "policies:\n  - name: none\n    match:\n      labels: [stagesweep.test=notify-{}]\n    min_age: 1h\n\
         schedule: \"@hourly\"\nrun_on_start: true\nlock_file: {{dir}}/lock\nshutdown_timeout: 5s\n\
         metrics:\n  enabled: false\nhistory:\n  path: {{dir}}/history.json\n",
        std::process::id(),
    );
    let notify = ("NOTIFY_SOCKET", sock_path.display().to_string());
    let agent = AgentProc::start_with(&config, &host, &[notify]);
    let got = collect(&sock, Duration::from_secs(30), |m| {
        m.iter().any(|l| l == "READY=1") && m.iter().any(|l| l.starts_with("STATUS=last pass"))
    });
    let (status, _, _) = agent.terminate();
    let tail = collect(&sock, Duration::from_secs(2), |m| {
        m.iter().any(|l| l == "STOPPING=1")
    });
    assert!(got.iter().any(|l| l == "READY=1"), "no READY=1 in {got:?}");
    assert!(
        got.iter()
            .any(|l| l.starts_with("STATUS=last pass") && l.contains("deleted 0")),
        "no STATUS= with the pass summary in {got:?}"
    );
    assert!(
        tail.iter().any(|l| l == "STOPPING=1"),
        "no STOPPING=1 in {tail:?}"
    );
    assert!(status.success(), "agent exited with {status}");
}
