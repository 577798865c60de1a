//! The command line as a user meets it: help, exit codes and messages that need no engine.

use crate::support;

use assert_cmd::Command;
use predicates::prelude::*;

/// The binary as the tests run it, on a terminal 100 columns wide (the help snapshots).
fn stagesweep() -> Command {
    let mut cmd = support::cli::stagesweep();
    cmd.env("COLUMNS", "100");
    cmd
}

fn help(args: &[&str]) -> String {
    let out = stagesweep()
        .args(args)
        .arg("--help")
        .output()
        .expect("runs");
    assert!(out.status.success());
    String::from_utf8(out.stdout).expect("utf-8 help")
}

#[test]
fn help_texts() {
    insta::assert_snapshot!("help", help(&[]));
    insta::assert_snapshot!("help_prune", help(&["prune"]));
    insta::assert_snapshot!("help_plan", help(&["plan"]));
    insta::assert_snapshot!("help_agent", help(&["agent"]));
    insta::assert_snapshot!("help_check_config", help(&["check-config"]));
    insta::assert_snapshot!("help_apply", help(&["apply"]));
    insta::assert_snapshot!("help_hold", help(&["hold"]));
    insta::assert_snapshot!("help_healthcheck", help(&["healthcheck"]));
    insta::assert_snapshot!("help_manpage", help(&["manpage"]));
    insta::assert_snapshot!("help_du", help(&["du"]));
}

#[test]
fn version_is_printed() {
    stagesweep()
        .arg("--version")
        .assert()
        .success()
        .stdout(predicate::str::starts_with("stagesweep "));
}

#[test]
fn unknown_flag_is_a_usage_error() {
    stagesweep().args(["prune", "--bogus"]).assert().code(2);
}

#[test]
fn check_config_accepts_the_shipped_default() {
    stagesweep()
        .args(["check-config", "--config", "config/default.yaml"])
        .assert()
        .success()
        .stdout(
            predicate::str::starts_with("ok\n").and(predicate::str::contains("builder-stages")),
        );
}

#[test]
fn check_config_reports_problems_with_positions_and_exits_2() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("bad.yaml");
    std::fs::write(
        &path,
        "policies:\n  - name: x\n    match:\n      labels: [stage=builder]\n    max_agee: 24h\n",
    )
    .expect("write");
    stagesweep()
        .args(["check-config", "--config"])
        .arg(&path)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("bad.yaml:5:").and(predicate::str::contains("max_agee")));
}

#[test]
fn an_explicit_config_that_does_not_exist_is_an_error() {
    stagesweep()
        .args(["check-config", "--config", "/nonexistent/stagesweep.yaml"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("/nonexistent/stagesweep.yaml"));
}

#[test]
fn the_config_path_can_come_from_the_environment() {
    stagesweep()
        .arg("check-config")
        .env("STAGESWEEP_CONFIG", "/nonexistent/from-env.yaml")
        .assert()
        .code(2)
        .stderr(predicate::str::contains("/nonexistent/from-env.yaml"));
}

#[test]
fn a_bad_adhoc_flag_is_a_config_error_before_docker_is_asked() {
    stagesweep()
        .args([
            "prune",
            "--dry-run",
            "--config",
            "config/default.yaml",
            "--min-age",
            "soon",
        ])
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--min-age").and(predicate::str::contains("soon")));
}

#[test]
fn an_unreachable_engine_exits_3_and_says_why() {
    for host in ["unix:///nonexistent/docker.sock", "tcp://127.0.0.1:1"] {
        stagesweep()
            .args(["prune", "--config", "config/default.yaml"])
            .env("DOCKER_HOST", host)
            .assert()
            .code(3)
            .stderr(predicate::str::contains("cannot reach docker at"))
            .stderr(predicate::str::contains(
                host.trim_start_matches("unix://")
                    .trim_start_matches("tcp://"),
            ));
    }
}

#[test]
fn the_pass_lock_cannot_be_the_build_lock() {
    stagesweep()
        .args(["prune", "--lock-file", "/run/stagesweep/builds.lock"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "--lock-file: --lock-file /run/stagesweep/builds.lock is the build lock",
        ));
}

#[test]
fn operator_mistakes_in_adhoc_flags_are_config_errors_before_docker_is_asked() {
    let cases: &[(&[&str], &str)] = &[
        (
            &["--label", "label=stage=builder"],
            "--label: label predicate \"label=stage=builder\" is docker's filter syntax",
        ),
        (
            &["--label", "tier != prod"],
            "--label: label predicate \"tier != prod\" has spaces around \"!=\"",
        ),
        (
            &["--label", "tier!=prod"],
            "--label: policy \"cli\" has only negative label predicates (tier!=prod)",
        ),
        (
            &["--filter", "until=2024-01-01T00:00:00"],
            "--filter: filter \"until=2024-01-01T00:00:00\" is not until=DURATION",
        ),
        (
            &["--filter", "before=app:1"],
            "--filter: filter \"before=app:1\" has no stagesweep equivalent",
        ),
        (
            &["--filter", "until=1h", "--min-age", "2h"],
            "sets the grace period a second time",
        ),
    ];
    for command in ["prune", "plan"] {
        for (flags, want) in cases {
            stagesweep()
                .args([command, "--config", "config/default.yaml"])
                .args(*flags)
                .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
                .assert()
                .code(2)
                .stderr(predicate::str::contains(*want));
        }
    }
}

#[test]
fn docker_filters_that_map_are_accepted_by_prune_and_plan() {
    // Valid flags get as far as the engine, which is not there: exit 3, not 2.
    for command in ["prune", "plan"] {
        stagesweep()
            .args([command, "--config", "config/default.yaml"])
            .args([
                "--filter",
                "label=stage=builder",
                "--filter",
                "label!=team=infra",
            ])
            .args(["--filter", "until=24h", "--filter", "dangling=true"])
            .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
            .assert()
            .code(3)
            .stderr(predicate::str::contains("cannot reach docker at"));
    }
}

#[test]
fn check_config_notes_a_policy_without_grace_period() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("zero.yaml");
    std::fs::write(
        &path,
        "policies:\n  - name: now\n    match: {labels: [stage=builder]}\n    min_age: 0s\n",
    )
    .expect("write");
    stagesweep()
        .args(["check-config", "--config"])
        .arg(&path)
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "note: policy \"now\" has min_age 0s: it relies on build coordination alone",
        ));
}
