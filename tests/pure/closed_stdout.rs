//! Every subcommand that prints exits as it would have when its reader went away first
//! (`stagesweep … | head`, `| true`): exit 0, no panic, nothing on stderr about the pipe.
//! The engine is a recorded one (`support::fake_api`); `engine_cli` does `prune` and `plan`
//! against real engines. Each run's stdout is a pipe whose reading end is already closed,
//! so the command's first write fails with EPIPE.

use crate::support;

use std::path::Path;
use std::time::Duration;

use support::cli::{Finished, config_file, run_bounded, run_closed_stdout};
use support::fake_api::{FakeApi, Recorded};

const LIMIT: Duration = Duration::from_secs(60);

/// One policy deleting every image of the recorded engine at `host`, whatever its age.
fn all_images(dir: &Path, host: &str) -> std::path::PathBuf {
    config_file(
        dir,
        &format!(
            "docker:\n  host: {host}\n  timeout: 10s\npolicies:\n  - name: all\n    match: \
             {{ all_images: true }}\n    min_age: 0s\n"
        ),
    )
}

/// `out` ended as the command does when everything was read: `code`, and no word of a
/// panic or the pipe.
fn quiet(what: &str, out: &Finished, code: i32) {
    assert_eq!(out.code, Some(code), "{what}: {}", out.stderr);
    for word in ["panicked", "Broken pipe", "broken pipe", "cannot write"] {
        assert!(!out.stderr.contains(word), "{what}: {}", out.stderr);
    }
}

#[tokio::test]
async fn commands_without_an_engine_exit_quietly_when_stdout_is_closed() {
    let shipped = concat!(env!("CARGO_MANIFEST_DIR"), "/config/default.yaml");
    for args in [
        &["check-config"][..],
        &["completions", "bash"],
        &["manpage"],
        &["manpage", "--section", "5"],
        &["--help"],
        &["--version"],
        &["plan", "--help"],
    ] {
        let out = run_closed_stdout(args, Some(Path::new(shipped)), None, LIMIT).await;
        quiet(&format!("{args:?}"), &out, 0);
    }
}

#[tokio::test]
async fn commands_on_an_engine_exit_quietly_when_stdout_is_closed() {
    let api = FakeApi::start(Recorded::load("1.41"));
    let dir = tempfile::tempdir().expect("temp dir");
    let config = all_images(dir.path(), &api.host);
    for args in [
        &["check-config"][..],
        &["plan"],
        &["plan", "--output", "json"],
        &["prune", "--dry-run"],
        &["prune", "--dry-run", "--output", "json"],
    ] {
        let out = run_closed_stdout(args, Some(&config), None, LIMIT).await;
        quiet(&format!("{args:?}"), &out, 0);
    }
    let deletes = |api: &FakeApi| {
        let requests = api.requests();
        requests.iter().filter(|r| r.starts_with("DELETE")).count()
    };
    assert_eq!(deletes(&api), 0, "dry runs delete nothing");

    // apply of a saved plan, then prune: each prints its report into nothing.
    let planned = run_bounded(&["plan", "--output", "json"], &config, LIMIT, "planned").await;
    assert_eq!(planned.code, Some(0), "{}", planned.stderr);
    let plan = dir.path().join("plan.json");
    std::fs::write(&plan, &planned.stdout).expect("write the plan");
    let plan = plan.display().to_string();
    let out = run_closed_stdout(&["apply", &plan], Some(&config), None, LIMIT).await;
    quiet("apply", &out, 0);
    let out = run_closed_stdout(&["prune"], Some(&config), None, LIMIT).await;
    quiet("prune", &out, 0);
}

#[tokio::test]
async fn healthcheck_exits_by_the_answer_when_stdout_is_closed() {
    // Any HTTP server answering 200 will do: the recorded engine's /_ping.
    let api = FakeApi::start_tcp(Recorded::load("1.41"));
    let url = format!("{}/_ping", api.host.replacen("tcp://", "http://", 1));
    let out = run_closed_stdout(&["healthcheck", "--url", &url], None, None, LIMIT).await;
    quiet("healthcheck", &out, 0);
}

/// The one mechanism: nothing in `cmd/` prints but through `cmd::stdout`.
#[test]
fn no_command_prints_around_the_stdout_writer() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/cmd");
    for entry in std::fs::read_dir(&dir).expect("src/cmd") {
        let path = entry.expect("an entry").path();
        let text = std::fs::read_to_string(&path).expect("read");
        for call in ["println!(", "print!(", "io::stdout()"] {
            let allowed = path.ends_with("stdout.rs") && call == "io::stdout()";
            // `eprintln!` and `eprint!` write to stderr: not what this is about.
            let used = text
                .match_indices(call)
                .any(|(at, _)| !text[..at].ends_with('e'));
            assert!(
                allowed || !used,
                "{} uses {call}: print through cmd::stdout instead (it ends quietly when the \
                 reader has gone)",
                path.display()
            );
        }
    }
}
