//! The deployment examples work as written. Every compose file (`deploy/docker-compose.yml`,
//! compose snippets in `config/*.yaml` comments and fenced `yaml` blocks of the README, of
//! CONTRIBUTING.md and of every page under `docs/`) is checked
//! against the image the Dockerfile builds: its `command` after the image's ENTRYPOINT parses
//! as a `stagesweep agent` command line (`stagesweep agent agent` would not), the mounted
//! configuration passes `check-config`, the non-root user gets the socket's group
//! (`group_add`), the socket the configuration names is mounted, the lock directory is
//! writable, the published port is the one the agent listens on (on all addresses), and
//! `docker-compose config` (Debian's, offline) accepts the file. The Kubernetes `DaemonSet`'s
//! args parse the same way and its probes use `/livez` and `/healthz`. Other fenced `yaml`
//! blocks of those pages must pass `check-config`.

use std::path::{Path, PathBuf};
use std::process::Command;

use clap::Parser;
use serde_json::Value;
use stagesweep::cmd::cli::{Cli, Command as Sub};
use stagesweep::config::{self, Config};

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn yaml(text: &str, origin: &str) -> Value {
    serde_saphyr::from_str(text).unwrap_or_else(|e| panic!("{origin}: not YAML: {e}"))
}

/// The image as the Dockerfile's final stage makes it.
struct Image {
    entrypoint: Vec<String>,
    cmd: Vec<String>,
    /// `COPY src dst` lines of the final stage: destination → source in the repository.
    copies: Vec<(String, String)>,
}

impl Image {
    fn from_dockerfile() -> Image {
        let text = std::fs::read_to_string(repo("Dockerfile")).expect("Dockerfile");
        let last = &text[text.rfind("\nFROM ").expect("a FROM line")..];
        let exec_form = |instr: &str| -> Vec<String> {
            let line = last
                .lines()
                .rfind(|l| l.starts_with(instr))
                .unwrap_or_else(|| panic!("the final stage has no {instr}"));
            serde_json::from_str(line[instr.len()..].trim())
                .unwrap_or_else(|e| panic!("{instr} is not in exec form: {e}"))
        };
        let copies = last
            .lines()
            .filter(|l| l.starts_with("COPY ") && !l.contains("--from"))
            .map(|l| {
                let w: Vec<&str> = l.split_whitespace().collect();
                (w[w.len() - 1].to_owned(), w[w.len() - 2].to_owned())
            })
            .collect();
        Image {
            entrypoint: exec_form("ENTRYPOINT "),
            cmd: exec_form("CMD "),
            copies,
        }
    }

    /// The command line a container runs with `args` (the image's CMD when `None`).
    fn parse(&self, args: Option<Vec<String>>, origin: &str) -> Cli {
        let mut command_line = self.entrypoint.clone();
        command_line.extend(args.unwrap_or_else(|| self.cmd.clone()));
        let cli = Cli::try_parse_from(&command_line).unwrap_or_else(|e| {
            panic!("{origin}: the container runs {command_line:?}, which fails:\n{e}")
        });
        assert!(
            matches!(cli.command, Sub::Agent),
            "{origin}: the container runs {command_line:?}, not the agent"
        );
        cli
    }
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// The configuration file a container reads: from a bind mount, else baked into the image.
fn config_in_container(
    cli: &Cli,
    mounts: &[(String, String)],
    base: &Path,
    image: &Image,
) -> (PathBuf, Config) {
    let inside = cli
        .config
        .config
        .clone()
        .unwrap_or_else(|| PathBuf::from(config::DEFAULT_PATH));
    let inside = inside.to_string_lossy().into_owned();
    let host = mounts
        .iter()
        .find(|(_, target)| *target == inside)
        .map(|(src, _)| base.join(src))
        .or_else(|| {
            image
                .copies
                .iter()
                .find(|(dst, _)| *dst == inside)
                .map(|(_, src)| repo(src))
        })
        .unwrap_or_else(|| panic!("nothing provides {inside} in the container"));
    let config = config::load_file(&host)
        .unwrap_or_else(|e| panic!("{}: check-config fails:\n{e}", host.display()));
    (host, config)
}

/// Check one compose document; `base` is the directory its relative paths start from.
fn check_compose(text: &str, base: &Path, origin: &str, image: &Image) {
    let doc = yaml(text, origin);
    let services = doc["services"].as_object().expect("services");
    let ours: Vec<&Value> = services
        .values()
        .filter(|s| {
            s["image"]
                .as_str()
                .is_some_and(|i| i.starts_with("stagesweep"))
        })
        .collect();
    assert!(!ours.is_empty(), "{origin}: no stagesweep service");
    for svc in ours {
        let args = svc.get("command").map(strings);
        assert!(
            svc.get("entrypoint").is_none(),
            "{origin}: keep the image's entrypoint"
        );
        let cli = image.parse(args, origin);
        let mounts: Vec<(String, String)> = strings(&svc["volumes"])
            .iter()
            .map(|v| {
                let parts: Vec<&str> = v.split(':').collect();
                (parts[0].to_owned(), parts[1].to_owned())
            })
            .collect();
        let (_, config) = config_in_container(&cli, &mounts, base, image);
        assert!(
            !strings(&svc["group_add"]).is_empty(),
            "{origin}: the image's user (uid 65532) needs the socket's group: group_add"
        );
        let host = config
            .docker
            .host
            .as_deref()
            .unwrap_or("unix:///var/run/docker.sock");
        if let Some(socket) = host.strip_prefix("unix://") {
            assert!(
                mounts.iter().any(|(_, t)| t == socket),
                "{origin}: the configuration uses {socket}, which is not mounted"
            );
        }
        let lock_dir = config.agent.lock_file.parent().expect("lock dir");
        let lock_dir = lock_dir.to_string_lossy();
        let tmpfs: Vec<String> = strings(&svc["tmpfs"])
            .iter()
            .map(|t| t.split(':').next().unwrap_or_default().to_owned())
            .collect();
        assert!(
            tmpfs.iter().any(|t| *t == lock_dir) || mounts.iter().any(|(_, t)| *t == lock_dir),
            "{origin}: mount a tmpfs at the lock directory {lock_dir}"
        );
        let listen = config.metrics.listen;
        for port in strings(&svc["ports"]) {
            let container_port = port.rsplit(':').next().expect("a port");
            assert_eq!(
                container_port,
                listen.port().to_string(),
                "{origin}: {port}"
            );
            assert!(
                listen.ip().is_unspecified(),
                "{origin}: {port} is published but the agent listens on {listen} only"
            );
        }
    }
    compose_config(text, base, origin);
}

/// `docker-compose config -q` on the document, from a file in `base`.
fn compose_config(text: &str, base: &Path, origin: &str) {
    let file = tempfile::Builder::new()
        .suffix(".yml")
        .tempfile_in(base)
        .expect("temp file");
    std::fs::write(file.path(), text).expect("write");
    let out = Command::new("docker-compose")
        .args(["-f"])
        .arg(file.path())
        .args(["config", "-q"])
        .env("DOCKER_GID", "999")
        .output()
        .expect(
            "docker-compose is installed (scripts/install-deps.sh: apt-get install docker-compose)",
        );
    assert!(
        out.status.success(),
        "{origin}: docker-compose config rejects it:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Comment blocks of a file that are compose documents (their first line is `services:`).
fn commented_compose(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut block: Option<(usize, String)> = None;
    for line in text.lines() {
        let Some(body) = line.strip_prefix('#') else {
            out.extend(block.take().map(|(_, b)| b));
            continue;
        };
        match &mut block {
            None if body.trim() == "services:" => {
                let indent = body.len() - body.trim_start().len();
                block = Some((indent, "services:\n".to_owned()));
            }
            Some((indent, b)) if body.len() > *indent && body[..*indent].trim().is_empty() => {
                b.push_str(&body[*indent..]);
                b.push('\n');
            }
            Some(_) => out.extend(block.take().map(|(_, b)| b)),
            None => {}
        }
    }
    out.extend(block.map(|(_, b)| b));
    out
}

/// The fenced `yaml` blocks of a Markdown file.
/// `(path, text)` of the README, CONTRIBUTING.md and every `docs/*.md`, in a stable order.
fn markdown_pages() -> Vec<(String, String)> {
    let mut paths = vec!["README.md".to_owned(), "CONTRIBUTING.md".to_owned()];
    let mut docs: Vec<String> = std::fs::read_dir(repo("docs"))
        .expect("docs/")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .map(|p| format!("docs/{}", p.file_name().expect("a name").to_string_lossy()))
        .collect();
    docs.sort();
    paths.extend(docs);
    paths
        .into_iter()
        .map(|path| {
            let text =
                std::fs::read_to_string(repo(&path)).unwrap_or_else(|e| panic!("{path}: {e}"));
            (path, text)
        })
        .collect()
}

fn yaml_blocks(markdown: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current: Option<String> = None;
    for line in markdown.lines() {
        match &mut current {
            None if line.trim_start().starts_with("```yaml") => current = Some(String::new()),
            Some(b) if line.trim_start().starts_with("```") => {
                out.push(std::mem::take(b));
                current = None;
            }
            Some(b) => {
                b.push_str(line);
                b.push('\n');
            }
            None => {}
        }
    }
    out
}

#[test]
fn compose_examples_run_the_agent_as_written() {
    let image = Image::from_dockerfile();
    let mut checked = 0;
    let deploy = repo("deploy/docker-compose.yml");
    let text = std::fs::read_to_string(&deploy).expect("deploy/docker-compose.yml");
    check_compose(&text, &repo("deploy"), "deploy/docker-compose.yml", &image);
    checked += 1;
    for entry in std::fs::read_dir(repo("config")).expect("config/") {
        let path = entry.expect("entry").path();
        let text = std::fs::read_to_string(&path).expect("read");
        for (i, snippet) in commented_compose(&text).iter().enumerate() {
            let origin = format!("{} (compose snippet {})", path.display(), i + 1);
            check_compose(snippet, &repo("config"), &origin, &image);
            checked += 1;
        }
    }
    for (path, text) in markdown_pages() {
        for (i, block) in yaml_blocks(&text).iter().enumerate() {
            if yaml(block, &path)["services"].is_object() {
                let origin = format!("{path} yaml block {}", i + 1);
                check_compose(block, &repo("."), &origin, &image);
                checked += 1;
            }
        }
    }
    assert!(
        checked >= 2,
        "the sidecar snippet and deploy/docker-compose.yml are checked"
    );
}

#[test]
fn readme_yaml_blocks_pass_check_config() {
    let mut in_readme = 0;
    for (path, text) in markdown_pages() {
        for (i, block) in yaml_blocks(&text).iter().enumerate() {
            let origin = format!("{path} yaml block {}", i + 1);
            let doc = yaml(block, &origin);
            let ci_job = doc["jobs"].is_object()
                || (doc.as_object()).is_some_and(|m| m.values().any(|v| v["script"].is_array()));
            if doc["services"].is_object() || doc["groups"].is_array() || ci_job {
                // compose (checked above), Prometheus rules, or a GitHub Actions / GitLab CI
                // job (checked by tests/readme_builds.rs)
                continue;
            }
            config::parse_str(block, &origin).unwrap_or_else(|e| panic!("{origin}:\n{e}"));
            in_readme += usize::from(path == "README.md");
        }
    }
    assert!(in_readme >= 1, "the README's configuration is checked");
}

#[test]
fn the_daemonset_runs_the_agent_with_liveness_on_livez_and_readiness_on_healthz() {
    let image = Image::from_dockerfile();
    let text =
        std::fs::read_to_string(repo("deploy/kubernetes/daemonset.yaml")).expect("daemonset");
    let doc = yaml(&text, "daemonset.yaml");
    let pod = &doc["spec"]["template"]["spec"];
    let container = &pod["containers"][0];
    let cli = image.parse(container.get("args").map(strings), "daemonset.yaml");
    assert_eq!(
        cli.config.config.as_deref(),
        Some(Path::new("/etc/stagesweep/config.yaml"))
    );
    // The config map is made from config/sidecar.yaml (see the file's header).
    assert!(text.contains("--from-file=config.yaml=config/sidecar.yaml"));
    let config = config::load_file(&repo("config/sidecar.yaml")).expect("sidecar.yaml");
    assert_eq!(
        container["ports"][0]["containerPort"].as_u64(),
        Some(u64::from(config.metrics.listen.port()))
    );
    assert_eq!(container["livenessProbe"]["httpGet"]["path"], "/livez");
    assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/healthz");
    assert!(
        pod["securityContext"]["supplementalGroups"]
            .as_array()
            .is_some_and(|g| !g.is_empty()),
        "the image's user needs the socket's group: supplementalGroups"
    );
}

#[test]
fn the_old_sidecar_mistake_would_be_caught() {
    // `command: ["agent", …]` after the entrypoint `stagesweep agent` is `stagesweep agent agent`.
    let image = Image::from_dockerfile();
    let mut command_line = image.entrypoint.clone();
    command_line.extend(["agent", "--config", "/x.yaml"].map(str::to_owned));
    assert!(
        Cli::try_parse_from(&command_line).is_err(),
        "{command_line:?} must not parse"
    );
}

/// The `check-config` output shown under the first example of docs/configuration.md is what
/// stagesweep prints for it (the engine left out: no host lines).
#[test]
fn the_configuration_pages_check_config_output_is_current() {
    let text = std::fs::read_to_string(repo("docs/configuration.md")).expect("configuration.md");
    let example = yaml_blocks(&text)
        .into_iter()
        .next()
        .expect("a yaml example");
    let (_, after) = (text.split_once("it prints (real output, the engine unreachable):"))
        .expect("the example's output is introduced");
    let shown = (after.split_once("```text\n"))
        .and_then(|(_, rest)| rest.split_once("\n```"))
        .map(|(block, _)| block)
        .expect("a text block follows");
    let cfg = config::parse_str(&example, "docs/configuration.md")
        .unwrap_or_else(|e| panic!("the example is valid: {e}"));
    let mut lines = vec!["ok".to_owned()];
    lines.extend(config::summary_lines(&cfg));
    assert_eq!(
        shown,
        lines.join("\n"),
        "docs/configuration.md shows another output"
    );
}
