//! docs/engines.md's support matrix against the engines `scripts/test.sh` starts: one row per
//! engine lane, named as the script and the tests (`tests/support/matrix.rs`) name it, with
//! its version and image store.

use crate::support;

use std::path::Path;

use support::matrix::MATRIX;

fn file(path: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(path))
        .unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The engines of `scripts/test.sh`'s `matrix=(…)` line, in its order.
fn script_matrix(script: &str) -> Vec<String> {
    let line = (script.lines())
        .find_map(|l| l.strip_prefix("matrix=("))
        .expect("scripts/test.sh has a `matrix=(…)` line");
    let names = line.split(')').next().unwrap_or_default();
    names.split_whitespace().map(str::to_owned).collect()
}

/// The rows of the page's "Support matrix" table: (lane, the whole row).
fn matrix_rows(page: &str) -> Vec<(String, String)> {
    let from = page
        .find("## Support matrix")
        .expect("docs/engines.md has a \"## Support matrix\" section");
    let section = &page[from..];
    let section = section[3..]
        .find("\n## ")
        .map_or(section, |end| &section[..end + 3]);
    (section.lines())
        .filter(|l| l.starts_with("| `"))
        .map(|l| {
            let lane = l.split('`').nth(1).unwrap_or_default();
            (lane.to_owned(), l.to_owned())
        })
        .collect()
}

#[test]
fn the_support_matrix_names_every_engine_the_test_script_starts() {
    let script = script_matrix(&file("scripts/test.sh"));
    let tests: Vec<&str> = MATRIX.iter().map(|m| m.name()).collect();
    assert_eq!(
        script, tests,
        "scripts/test.sh's matrix and tests/support/matrix.rs's MATRIX name the same engines"
    );
    let rows = matrix_rows(&file("docs/engines.md"));
    let lanes: Vec<&str> = rows.iter().map(|(l, _)| l.as_str()).collect();
    assert_eq!(
        lanes, tests,
        "docs/engines.md's support matrix has one row per engine lane, in the script's order"
    );
    for ((_, row), m) in rows.iter().zip(MATRIX) {
        let version = m.version_prefix().trim_end_matches('.');
        let family = match m.family() {
            support::TestEngine::Docker => "Docker",
            support::TestEngine::Podman => "Podman",
        };
        assert!(
            row.contains(&format!("{family} {version}")),
            "{}: names {family} {version}: {row}",
            m.name()
        );
        let store = row.split('|').nth(4).unwrap_or_default();
        assert_eq!(
            store.contains("containerd"),
            m.containerd_store(),
            "{}: its image store: {row}",
            m.name()
        );
    }
}
