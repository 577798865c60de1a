//! Configuration files end to end: every example in `config/` validates, and every
//! fixture in `tests/fixtures/config/` gives the problems (with `file:line:column`) or the
//! summary recorded in its insta snapshot. New files in either directory are picked up
//! automatically. Paths are relative to the package root (cargo runs tests there), so
//! snapshots never contain machine paths.

use std::path::{Path, PathBuf};

use stagesweep::config;

/// `*.yaml` files of a directory (relative to the package root), sorted.
fn yaml_files(dir: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot list {dir}: {e}"))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .map(|p| Path::new(dir).join(p.file_name().expect("a file name")))
        .collect();
    files.sort();
    files
}

fn stem(path: &Path) -> String {
    path.file_stem()
        .expect("a file stem")
        .to_string_lossy()
        .into_owned()
}

/// What `check-config` would show: the summary, or every problem.
fn render(path: &Path) -> String {
    match config::load_file(path) {
        Ok(c) => format!("valid\n{}", config::summary_lines(&c).join("\n")),
        Err(err) => format!("invalid: {} problem(s)\n{err}", err.problems.len()),
    }
}

#[test]
fn every_example_config_validates() {
    let files = yaml_files("config");
    assert!(
        files.iter().any(|p| p.ends_with("default.yaml")),
        "config/default.yaml is missing"
    );
    for path in &files {
        let config = config::load_file(path).unwrap_or_else(|e| panic!("{}:\n{e}", path.display()));
        assert!(
            !config.policies.is_empty(),
            "{} has no policies",
            path.display()
        );
        insta::assert_snapshot!(format!("example-{}", stem(path)), render(path));
    }
}

#[test]
fn embedded_default_is_config_default_yaml() {
    let on_disk = std::fs::read_to_string("config/default.yaml").expect("config/default.yaml");
    assert_eq!(on_disk, config::DEFAULT_YAML);
    let from_file = config::load_file(Path::new("config/default.yaml")).expect("valid");
    assert_eq!(
        config::summary_lines(&from_file),
        config::summary_lines(&config::embedded_default())
    );
}

#[test]
fn every_fixture_matches_its_snapshot() {
    let files = yaml_files("tests/fixtures/config");
    assert!(files.len() >= 4, "fixtures are missing: {files:?}");
    for path in &files {
        insta::assert_snapshot!(format!("fixture-{}", stem(path)), render(path));
    }
}

fn problems_of(name: &str) -> Vec<config::Problem> {
    let path = PathBuf::from(format!("tests/fixtures/config/{name}.yaml"));
    config::load_file(&path).expect_err(name).problems
}

#[test]
fn accumulated_problems_are_all_reported_in_order() {
    let problems = problems_of("accumulated");
    assert!(problems.len() >= 15, "{problems:#?}");
    let positions: Vec<(u32, u32)> = problems
        .iter()
        .map(|p| {
            let mut parts = p.location.rsplitn(3, ':');
            let column = parts.next().and_then(|c| c.parse().ok()).expect("column");
            let line = parts.next().and_then(|l| l.parse().ok()).expect("line");
            assert_eq!(parts.next(), Some("tests/fixtures/config/accumulated.yaml"));
            (line, column)
        })
        .collect();
    let mut sorted = positions.clone();
    sorted.sort_unstable();
    assert_eq!(positions, sorted, "problems are in document order");
}

#[test]
fn unknown_key_is_an_error_at_its_position() {
    let problems = problems_of("unknown-key");
    assert_eq!(problems.len(), 1);
    assert_eq!(
        problems[0].location,
        "tests/fixtures/config/unknown-key.yaml:6:5"
    );
    assert_eq!(problems[0].path, "policies[0].max_agee");
    assert!(problems[0].message.starts_with("unknown field `max_agee`"));
}

#[test]
fn malformed_yaml_is_one_problem_with_the_parser_position() {
    let problems = problems_of("malformed");
    assert_eq!(problems.len(), 1, "{problems:#?}");
    assert!(
        problems[0]
            .location
            .starts_with("tests/fixtures/config/malformed.yaml:")
    );
}

#[test]
fn duplicate_keys_are_rejected() {
    let problems = problems_of("duplicate-key");
    assert_eq!(problems.len(), 1);
    assert_eq!(
        problems[0].location,
        "tests/fixtures/config/duplicate-key.yaml:4:3"
    );
    assert!(problems[0].message.contains("duplicate mapping key"));
}
