//! Bad configuration input at volume: random and mutated YAML, deep nesting, huge scalars,
//! alias bombs. The loader answers `Ok` or a located configuration error, never panics, and
//! its input budgets (`config::limits`) refuse what would cost time or memory. The bombs also
//! run through `stagesweep check-config` under a 256 MiB address-space limit: exit 2.
//!
//! Bounded for CI: `PROPTEST_CASES` (default 256 per property). Longer runs: the cargo-fuzz
//! target in `fuzz/` (see `fuzz/README.md`).

use std::fmt::Write as _;
use std::process::Command;

use proptest::prelude::*;
use stagesweep::config::{self, MAX_CONFIG_BYTES};

/// Seeds: the shipped examples and the test fixtures.
fn seeds() -> Vec<String> {
    let mut out = Vec::new();
    for dir in ["config", "tests/fixtures/config", "fuzz/corpus/config_load"] {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            if let Ok(text) = std::fs::read_to_string(entry.path()) {
                out.push(text);
            }
        }
    }
    assert!(out.len() >= 5, "seed files found: {}", out.len());
    out
}

/// Parse and check the outcome's shape: every problem has a location, and `Ok` is a config.
fn load(text: &str) {
    match config::parse_str(text, "fuzz.yaml") {
        Ok(c) => {
            let _ = config::summary_lines(&c);
        }
        Err(e) => {
            assert!(!e.problems.is_empty());
            for p in &e.problems {
                assert!(p.location.starts_with("fuzz.yaml"), "{p:?}");
                assert!(!p.message.is_empty(), "{p:?}");
            }
        }
    }
}

#[derive(Debug, Clone)]
enum Mutation {
    Flip(usize, u8),
    Delete(usize, usize),
    Duplicate(usize, usize),
    Insert(usize, String),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let token = prop::sample::select(vec![
        ":",
        "- ",
        "\n",
        "  ",
        "{",
        "}",
        "[",
        "]",
        "&a ",
        "*a",
        "<<: ",
        "!!str ",
        "\"",
        "'",
        "#",
        "---\n",
        "?",
        "|",
        ">",
        "\t",
        "\u{feff}",
        "0x",
        "1e999",
        "~",
        "null",
        "policies:",
        "min_age: ",
        "keep_last: -1",
        "labels: [",
        "match:",
        "@every ",
        "%YAML 1.2\n",
    ])
    .prop_map(str::to_owned);
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Flip(i, b)),
        (any::<usize>(), 1usize..40).prop_map(|(i, n)| Mutation::Delete(i, n)),
        (any::<usize>(), 1usize..200).prop_map(|(i, n)| Mutation::Duplicate(i, n)),
        (any::<usize>(), token).prop_map(|(i, t)| Mutation::Insert(i, t)),
    ]
}

fn apply(text: &str, mutations: &[Mutation]) -> String {
    let mut bytes = text.as_bytes().to_vec();
    for m in mutations {
        let len = bytes.len().max(1);
        match m {
            Mutation::Flip(i, b) if !bytes.is_empty() => bytes[i % len] ^= b,
            Mutation::Delete(i, n) if !bytes.is_empty() => {
                let at = i % len;
                bytes.drain(at..(at + n).min(bytes.len()));
            }
            Mutation::Duplicate(i, n) if !bytes.is_empty() => {
                let at = i % len;
                let piece = bytes[at..(at + n).min(bytes.len())].to_vec();
                bytes.splice(at..at, piece);
            }
            Mutation::Insert(i, t) => {
                let at = i % (bytes.len() + 1);
                bytes.splice(at..at, t.bytes());
            }
            _ => {}
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

proptest! {
    #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn random_text_never_panics(text in "\\PC{0,400}") {
        load(&text);
    }

    #[test]
    fn yaml_shaped_noise_never_panics(text in "([a-z_]{1,12}: ?|- |  |\\[|\\]|\\{|\\}|&x |\\*x|<<: |\"|'|#|\n|[0-9smhd.]{1,6}|,){0,120}") {
        load(&text);
    }

    #[test]
    fn mutated_examples_never_panic(
        seed in any::<prop::sample::Index>(),
        mutations in prop::collection::vec(mutation(), 1..8),
    ) {
        let seeds = seeds();
        let seed: &String = seed.get(&seeds);
        let text = apply(seed, &mutations);
        load(&text);
    }

    #[test]
    fn nesting_of_any_depth_is_refused_or_loaded(depth in 1usize..5000, flow in any::<bool>()) {
        let text = if flow {
            format!("policies: {}{}", "[".repeat(depth), "]".repeat(depth))
        } else {
            let mut t = String::from("protect:\n");
            for d in 0..depth.min(2000) {
                let _ = writeln!(t, "{}k{d}:", " ".repeat(2 * (d + 1)));
            }
            t
        };
        load(&text);
    }
}

/// Inputs that would cost time or memory without the budgets.
fn bombs() -> Vec<(&'static str, String)> {
    let mut laughs = String::from(
        "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n",
    );
    for (i, prev) in ["b", "c", "d", "e", "f", "g", "h", "i"]
        .iter()
        .zip(["a", "b", "c", "d", "e", "f", "g", "h"])
    {
        let _ = writeln!(
            laughs,
            "{i}: &{i} [*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev}]"
        );
    }
    laughs.push_str("policies: *i\n");
    vec![
        ("alias bomb", laughs),
        (
            "deep flow nesting",
            format!("policies: {}{}", "[".repeat(100_000), "]".repeat(100_000)),
        ),
        ("deep block nesting", {
            let mut t = String::from("protect:\n");
            for d in 0..500 {
                let _ = writeln!(t, "{}- ", " ".repeat(2 * (d + 1)));
            }
            t
        }),
        (
            "a 2 MiB file",
            format!("schedule: \"{}\"\n", "x".repeat(2 << 20)),
        ),
        (
            "a 900 KiB scalar",
            format!("schedule: \"{}\"\n", "x".repeat(900 << 10)),
        ),
        ("many documents", "---\n{}\n".repeat(10_000)),
        (
            "many anchors",
            (0..5_000).fold(String::new(), |mut t, i| {
                let _ = writeln!(t, "k{i}: &a{i} v");
                t
            }),
        ),
    ]
}

#[test]
fn bombs_are_refused_as_configuration_errors() {
    for (what, text) in bombs() {
        let started = std::time::Instant::now();
        let result = config::parse_str(&text, "bomb.yaml");
        let err = result.expect_err(what);
        let rendered = err.to_string();
        assert!(rendered.starts_with("bomb.yaml"), "{what}: {rendered}");
        assert!(
            rendered.len() < 4096,
            "{what}: a {} byte message",
            rendered.len()
        );
        eprintln!(
            "{what}: {:?}: {}",
            started.elapsed(),
            rendered.lines().next().unwrap_or_default()
        );
    }
    assert!(bombs().iter().any(|(_, t)| t.len() > MAX_CONFIG_BYTES));
}

#[test]
fn check_config_refuses_bombs_within_256_mib() {
    let dir = tempfile::tempdir().expect("temp dir");
    for (what, text) in bombs() {
        let path = dir.path().join("bomb.yaml");
        std::fs::write(&path, &text).expect("write");
        let out = Command::new("prlimit")
            .arg(format!("--as={}", 256u64 << 20))
            .arg(env!("CARGO_BIN_EXE_stagesweep"))
            .args(["check-config", "--config"])
            .arg(&path)
            .output()
            .expect("run prlimit (util-linux)");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(stagesweep::exit::CONFIG),
            "{what}: {stderr}"
        );
        assert!(stderr.contains("bomb.yaml"), "{what}: {stderr}");
        assert!(!stderr.contains("panicked"), "{what}: {stderr}");
    }
}
