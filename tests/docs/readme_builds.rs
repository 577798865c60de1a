//! docs/builds.md, "Protecting running builds", is checked, not just written: its CI
//! snippets are valid YAML, every `stagesweep hold` line parses, every `flock -s` names the
//! default build lock, and its tmpfiles.d entries (applied with `systemd-tmpfiles --root`)
//! let exactly the users it says hold the lock, and a read-only mount of the lock directory is
//! enough for a build. Needs root (scripts/test.sh runs as root).

use std::path::{Path, PathBuf};
use std::process::Command;

use clap::Parser;
use stagesweep::cmd::cli::{Cli, Command as Sub};
use stagesweep::config::DEFAULT_BUILD_LOCK_FILE;

/// The page (it was the README's section of the same name), title to end.
fn section() -> String {
    let page = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/builds.md"))
        .expect("docs/builds.md");
    let start = page
        .find("# Protecting running builds")
        .expect("docs/builds.md has the title");
    let rest = &page[start..];
    let end = rest[2..].find("\n# ").map_or(rest.len(), |i| i + 2);
    rest[..end].to_owned()
}

/// `(language, body)` of every fenced block.
fn blocks(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        if let Some(lang) = line.strip_prefix("```") {
            let body: Vec<&str> = lines.by_ref().take_while(|l| *l != "```").collect();
            out.push((lang.to_owned(), body.join("\n")));
        }
    }
    out
}

#[test]
fn ci_snippets_are_yaml_and_their_commands_parse() {
    let text = section();
    let all = blocks(&text);
    let yaml: Vec<_> = all.iter().filter(|(lang, _)| lang == "yaml").collect();
    assert_eq!(yaml.len(), 2, "GitLab and GitHub examples");
    for (_, body) in &yaml {
        let doc: serde_json::Value =
            serde_saphyr::from_str(body).unwrap_or_else(|e| panic!("not YAML ({e}):\n{body}"));
        assert!(doc.is_object(), "{body}");
    }
    let mut holds = 0;
    let mut flocks = 0;
    for line in all.iter().flat_map(|(_, body)| body.lines()) {
        if let Some(at) = line.find("stagesweep hold") {
            let words: Vec<&str> = line[at..].split_whitespace().collect();
            let cli = Cli::try_parse_from(&words).unwrap_or_else(|e| panic!("{line}: {e}"));
            let Sub::Hold(hold) = cli.command else {
                panic!("{line}: not hold");
            };
            assert_eq!(hold.command[0], "docker", "{line}");
            holds += 1;
        }
        if let Some(at) = line.find("flock -s ") {
            let path = line[at + 9..].split_whitespace().next().expect("a path");
            assert_eq!(path, DEFAULT_BUILD_LOCK_FILE, "{line}");
            flocks += 1;
        }
    }
    assert!(
        holds >= 2 && flocks >= 2,
        "{holds} hold, {flocks} flock lines"
    );
}

/// tmpfiles.d lines of the section: the fenced entry and the inline variants.
fn tmpfiles_lines(text: &str) -> Vec<String> {
    let mut lines = Vec::new();
    for part in text.split('`') {
        for line in part.lines() {
            let line = line.trim();
            if (line.starts_with("d /run/") || line.starts_with("f /run/")) && line.ends_with(" -")
            {
                lines.push(line.to_owned());
            }
        }
    }
    lines
}

/// A root tree for `systemd-tmpfiles --root` that knows root and the docker group.
fn root_tree() -> (tempfile::TempDir, u32) {
    let dir = tempfile::tempdir().expect("temp dir");
    let etc = dir.path().join("etc");
    std::fs::create_dir_all(&etc).expect("etc");
    let group = Command::new("getent")
        .args(["group", "root", "docker"])
        .output()
        .expect("getent");
    let groups = String::from_utf8(group.stdout).expect("utf-8");
    let docker_gid = groups
        .lines()
        .find(|l| l.starts_with("docker:"))
        .and_then(|l| l.split(':').nth(2))
        .and_then(|g| g.parse().ok())
        .expect("a docker group (installed with docker.io)");
    std::fs::write(etc.join("group"), groups).expect("group");
    let passwd = "root:x:0:0:root:/root:/bin/sh\nstagesweep:x:990:990::/:/usr/sbin/nologin\n";
    std::fs::write(etc.join("passwd"), passwd).expect("passwd");
    // Let an unprivileged user reach the tree.
    set_mode(dir.path(), 0o755);
    (dir, docker_gid)
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

fn apply(root: &Path, lines: &[&String]) {
    let conf = root.join("stagesweep.conf");
    let text = lines.iter().fold(String::new(), |mut text, l| {
        text.push_str(l);
        text.push('\n');
        text
    });
    std::fs::write(&conf, text).expect("conf");
    let out = Command::new("systemd-tmpfiles")
        .arg("--create")
        .arg(format!("--root={}", root.display()))
        .arg(&conf)
        .output()
        .expect("systemd-tmpfiles (package systemd) runs");
    assert!(
        out.status.success(),
        "systemd-tmpfiles --create failed (run as root: scripts/test.sh): {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Whether `nobody`, with or without the docker group, can hold the lock shared.
fn nobody_can_flock(lock: &Path, groups: Option<u32>) -> bool {
    let groups = groups.map_or("--clear-groups".to_owned(), |g| format!("--groups={g}"));
    Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            &groups,
            "flock",
            "-s",
            "-n",
        ])
        .arg(lock)
        .arg("true")
        .status()
        .expect("setpriv and flock (util-linux) run")
        .success()
}

#[test]
fn the_shipped_tmpfiles_entries_let_the_docker_group_and_only_it_hold_the_lock() {
    let text = section();
    let lines = tmpfiles_lines(&text);
    let shipped = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/systemd/stagesweep.tmpfiles"
    ))
    .expect("systemd/stagesweep.tmpfiles");
    let shipped: Vec<String> = shipped
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(str::to_owned)
        .collect();
    assert_eq!(lines, shipped, "docs/builds.md shows the shipped entries");

    let (tree, docker) = root_tree();
    let entries: Vec<&String> = lines.iter().collect();
    apply(tree.path(), &entries);
    set_mode(&tree.path().join("run"), 0o755);
    let lock: PathBuf = tree
        .path()
        .join(DEFAULT_BUILD_LOCK_FILE.trim_start_matches('/'));
    assert!(lock.is_file(), "{} was not created", lock.display());
    assert!(
        nobody_can_flock(&lock, Some(docker)),
        "docker group holds it"
    );
    assert!(!nobody_can_flock(&lock, None), "others cannot");
}

/// Unmounts on drop, so a failing assertion leaves no mount behind.
struct Mount(PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn a_read_only_mount_of_the_lock_directory_is_enough_for_a_build() {
    use std::io::{BufRead, BufReader, Write};
    use std::process::Stdio;

    let dir = tempfile::tempdir().expect("temp dir");
    let host = dir.path().join("run/stagesweep");
    let job = dir.path().join("job/run/stagesweep");
    std::fs::create_dir_all(&host).expect("host dir");
    std::fs::create_dir_all(&job).expect("job dir");
    let lock = host.join("builds.lock");
    std::fs::write(&lock, b"").expect("lock file");
    let mount = |args: &[&str]| {
        let ok = Command::new("mount")
            .args(args)
            .status()
            .expect("mount runs");
        assert!(
            ok.success(),
            "mount {args:?} failed (run as root: scripts/test.sh)"
        );
    };
    let (host_s, job_s) = (host.display().to_string(), job.display().to_string());
    mount(&["--bind", &host_s, &job_s]);
    let _mounted = Mount(job.clone());
    mount(&["-o", "remount,bind,ro", &job_s]);

    let mut build = Command::new("flock")
        .arg("-s")
        .arg(job.join("builds.lock"))
        .args(["sh", "-c", "echo locked; read line"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("flock runs");
    let mut line = String::new();
    BufReader::new(build.stdout.take().expect("piped"))
        .read_line(&mut line)
        .expect("read");
    assert_eq!(line, "locked\n", "flock -s through the read-only mount");
    assert!(
        stagesweep::locks::BuildLock::is_held(&lock).expect("probe"),
        "the host sees the job's lock"
    );
    writeln!(build.stdin.take().expect("piped")).expect("release");
    assert!(build.wait().expect("flock exits").success());
}
