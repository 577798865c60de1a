//! The documentation against the code: reason and outcome kinds, exit codes and the JSON
//! document's fields (docs/output.md), the commands (docs/commands.md). A new kind, field or
//! command fails here until the page says what it is. And the pages as a whole: the README
//! stays a front door of at most 250 lines, and every relative link of README.md,
//! CONTRIBUTING.md and docs/*.md names a file (and a heading of it) that exists.

use crate::support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::CommandFactory;
use pulldown_cmark::{Event, Options, Parser, Tag, TagEnd};
use stagesweep::cmd::cli::Cli;
use stagesweep::engine::fake::{FakeEngine, image};
use stagesweep::execute::CacheOutcome;
use stagesweep::execute::Outcome;
use stagesweep::execute::Summary;
use stagesweep::plan::build_cache::CacheReason;
use stagesweep::plan::{DiskFigures, Reason, Source};
use support::passes::{cache_record, now, pass};

/// A file of the repository, by its path from the root.
fn page(path: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(path))
        .unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The page of output formats, JSON fields, kinds and exit codes (once the README's).
fn output_md() -> String {
    page("docs/output.md")
}

/// The paragraph of a page that starts with `start`, up to the next blank line.
fn paragraph(text: &str, start: &str) -> String {
    let from = text
        .find(start)
        .unwrap_or_else(|| panic!("the page has no {start:?}"));
    let rest = &text[from..];
    rest[..rest.find("\n\n").unwrap_or(rest.len())].to_owned()
}

/// Every `backticked` word of a text.
fn code_spans(text: &str) -> BTreeSet<String> {
    text.split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect()
}

/// One reason of each kind. The match has no wildcard: a new variant does not compile until
/// it is listed here (and then in docs/output.md).
fn every_reason() -> Vec<Reason> {
    let p: Arc<str> = Arc::from("p");
    let mut all = vec![
        Reason::Matched {
            policy: p.clone(),
            age_secs: 0,
            min_age_secs: 0,
        },
        Reason::OlderThanMaxAge {
            policy: p.clone(),
            age_secs: 0,
            max_age_secs: 0,
        },
        Reason::BeyondKeepLast {
            policy: p.clone(),
            keep_last: 1,
            group: p.clone(),
            rank: 2,
        },
        Reason::ParentOfDeleted {
            child: String::new(),
            policy: p.clone(),
        },
        Reason::OverSizeBudget {
            policy: p.clone(),
            group: p.clone(),
            group_bytes: 0,
            max_total_size: 0,
            ranked: None,
        },
        Reason::InUse {
            container: String::new(),
            state: String::new(),
        },
        Reason::ParentOfInUse {
            child: String::new(),
            container: String::new(),
        },
        Reason::ParentOfKept {
            child: String::new(),
        },
        Reason::ProtectedReference {
            pattern: String::new(),
        },
        Reason::ProtectedLabel {
            predicate: String::new(),
        },
        Reason::UnknownAge {
            policy: p.clone(),
            created: String::new(),
        },
        Reason::OtherReferences {
            policy: p.clone(),
            references: Vec::new(),
        },
        Reason::YoungerThanMinAge {
            policy: p.clone(),
            age_secs: 0,
            min_age_secs: 0,
        },
        Reason::AmongNewest {
            policy: p.clone(),
            keep_last: 1,
            group: p.clone(),
            rank: 1,
        },
        Reason::WithinPolicy { policy: p.clone() },
        Reason::NoPolicyMatches,
    ];
    all.extend(history_and_disk_reasons(&p));
    for r in &all {
        match r {
            Reason::Matched { .. }
            | Reason::OlderThanMaxAge { .. }
            | Reason::BeyondKeepLast { .. }
            | Reason::OverSizeBudget { .. }
            | Reason::ParentOfDeleted { .. }
            | Reason::InUse { .. }
            | Reason::ParentOfInUse { .. }
            | Reason::ParentOfKept { .. }
            | Reason::ProtectedReference { .. }
            | Reason::ProtectedLabel { .. }
            | Reason::UnknownAge { .. }
            | Reason::OtherReferences { .. }
            | Reason::YoungerThanMinAge { .. }
            | Reason::AmongNewest { .. }
            | Reason::WithinPolicy { .. }
            | Reason::UnusedFor { .. }
            | Reason::UsedRecently { .. }
            | Reason::ArrivedRecently { .. }
            | Reason::DiskPressure { .. }
            | Reason::NoDiskPressure { .. }
            | Reason::DiskNotMeasured { .. }
            | Reason::NoPolicyMatches => {}
        }
    }
    all
}

/// The reasons that come from the history and the disk.
fn history_and_disk_reasons(p: &Arc<str>) -> Vec<Reason> {
    vec![
        Reason::UnusedFor {
            policy: p.clone(),
            last_used: chrono::DateTime::UNIX_EPOCH,
            last_used_by: Source::Event,
            idle_secs: 0,
            unused_for_secs: 0,
        },
        Reason::UsedRecently {
            policy: p.clone(),
            last_used: chrono::DateTime::UNIX_EPOCH,
            last_used_by: Source::Event,
            idle_secs: 0,
            unused_for_secs: 0,
        },
        Reason::ArrivedRecently {
            policy: p.clone(),
            first_seen: chrono::DateTime::UNIX_EPOCH,
            first_seen_by: Source::Listing,
            age_secs: 0,
            min_age_secs: 0,
        },
        Reason::DiskPressure {
            policy: p.clone(),
            last_used: None,
            last_used_by: None,
            disk: Arc::new(figures()),
            ranked: None,
        },
        Reason::NoDiskPressure {
            policy: p.clone(),
            disk: Arc::new(figures()),
        },
        Reason::DiskNotMeasured {
            policy: p.clone(),
            error: p.clone(),
        },
    ]
}

fn figures() -> DiskFigures {
    DiskFigures {
        measured: "/".into(),
        resource: "space".into(),
        used_permille: 0,
        high_percent: 85,
        low_percent: 80,
        to_free_bytes: 0,
    }
}

fn every_outcome() -> Vec<Outcome> {
    let all = vec![
        Outcome::Deleted,
        Outcome::UntaggedOnly {
            untagged: Vec::new(),
        },
        Outcome::AlreadyGone,
        Outcome::Skipped {
            reason: String::new(),
        },
        Outcome::Failed {
            error: String::new(),
        },
        Outcome::NotAttempted,
    ];
    for o in &all {
        match o {
            Outcome::Deleted
            | Outcome::UntaggedOnly { .. }
            | Outcome::AlreadyGone
            | Outcome::Skipped { .. }
            | Outcome::Failed { .. }
            | Outcome::NotAttempted => {}
        }
    }
    all
}

#[test]
fn every_reason_kind_is_documented_and_nothing_else() {
    let kinds: BTreeSet<String> = every_reason().iter().map(|r| r.kind().to_owned()).collect();
    let documented = code_spans(&paragraph(&output_md(), "Reason kinds:"));
    assert_eq!(documented, kinds);
}

#[test]
fn every_outcome_kind_is_documented() {
    let text = paragraph(&output_md(), "Outcome kinds:");
    let documented = code_spans(&text);
    for o in every_outcome() {
        assert!(
            documented.contains(o.kind()),
            "{} missing from: {text}",
            o.kind()
        );
    }
}

#[test]
fn the_exit_code_table_matches_the_code() {
    use stagesweep::exit;
    let text = output_md();
    let table = &text[text.find("## Exit codes").expect("section")..];
    let rows: Vec<i32> = table
        .lines()
        .skip_while(|l| !l.starts_with("| 0"))
        .take_while(|l| l.starts_with('|'))
        .map(|l| {
            l[1..]
                .trim_start()
                .split(' ')
                .next()
                .unwrap_or("")
                .parse()
                .expect("a code")
        })
        .collect();
    let codes = [
        exit::OK,
        exit::DELETIONS_FAILED,
        exit::CONFIG,
        exit::UNREACHABLE,
        exit::LOCKED,
        exit::ENVIRONMENT,
    ];
    assert_eq!(rows, codes.to_vec());
    let help = Cli::command().render_long_help().to_string();
    for code in codes {
        assert!(
            help.contains(&format!("{code} ")),
            "--help names exit code {code}"
        );
    }
}

#[test]
fn every_command_is_in_the_commands_table() {
    let text = page("docs/commands.md");
    let section = &text[text.find("# Commands").expect("section")..];
    let table = &section[section.find("| command").expect("table")..];
    let table = &table[..table.find("\n\n").expect("table end")];
    for sub in Cli::command().get_subcommands() {
        let name = format!("`stagesweep {}", sub.get_name());
        assert!(
            table.contains(&name),
            "{name} missing from the commands table"
        );
    }
}

#[tokio::test]
async fn the_json_fields_are_the_documented_ones() {
    let engine = FakeEngine::builder()
        .image(image("a").label("stage", "builder"))
        .build();
    let cfg = stagesweep::config::embedded_default();
    let r = pass(&engine, &cfg, true).await;
    let doc = serde_json::to_value(stagesweep::report::to_json(
        &r,
        &stagesweep::report::ALL_ACTIONS,
    ))
    .expect("json");
    let text = output_md();
    let table = &text[text
        .find("`--output json` prints one document")
        .expect("section")..];
    let row = |field: &str| -> String {
        let start = table
            .find(&format!("| `{field}` |"))
            .unwrap_or_else(|| panic!("no row for {field}"));
        table[start..].lines().next().expect("row").to_owned()
    };
    for key in doc.as_object().expect("object").keys() {
        row(if key == "images" { "images[]" } else { key });
    }
    let summary_row = code_spans(&row("summary"));
    let summary = serde_json::to_value(Summary::default()).expect("json");
    for key in summary.as_object().expect("object").keys() {
        assert!(summary_row.contains(key), "summary.{key} undocumented");
    }
    let images_row = code_spans(&row("images[]"));
    for key in doc["images"][0].as_object().expect("an image").keys() {
        assert!(images_row.contains(key), "images[].{key} undocumented");
    }
}

/// One build cache reason of each kind; the match has no wildcard (see `every_reason`).
fn every_cache_reason() -> Vec<CacheReason> {
    let p: Arc<str> = Arc::from("p");
    let all = vec![
        CacheReason::UnusedFor {
            rule: p.clone(),
            idle_secs: 0,
            unused_for_secs: 0,
        },
        CacheReason::OverKeepStorage {
            rule: p.clone(),
            total_bytes: 0,
            keep_storage: 0,
        },
        CacheReason::UnheldShared {
            rule: p.clone(),
            idle_secs: 0,
            unused_for_secs: 0,
            images: 0,
        },
        CacheReason::InUse,
        CacheReason::ParentOfKept {
            child: String::new(),
        },
        CacheReason::Shared { rule: p.clone() },
        CacheReason::UsedRecently {
            rule: p.clone(),
            idle_secs: 0,
            unused_for_secs: 0,
        },
        CacheReason::WithinKeepStorage {
            rule: p.clone(),
            total_bytes: 0,
            keep_storage: 0,
        },
        CacheReason::UnknownLastUse { rule: p },
        CacheReason::NoRuleMatches,
    ];
    for r in &all {
        match r {
            CacheReason::UnusedFor { .. }
            | CacheReason::OverKeepStorage { .. }
            | CacheReason::UnheldShared { .. }
            | CacheReason::InUse
            | CacheReason::ParentOfKept { .. }
            | CacheReason::Shared { .. }
            | CacheReason::UsedRecently { .. }
            | CacheReason::WithinKeepStorage { .. }
            | CacheReason::UnknownLastUse { .. }
            | CacheReason::NoRuleMatches => {}
        }
    }
    all
}

#[test]
fn every_build_cache_reason_and_outcome_kind_is_documented() {
    let kinds: BTreeSet<String> = (every_cache_reason().iter())
        .map(|r| r.kind().to_owned())
        .collect();
    let documented = code_spans(&paragraph(&output_md(), "Build cache reason kinds:"));
    assert_eq!(documented, kinds);
    let outcomes = [
        CacheOutcome::Deleted,
        CacheOutcome::Skipped {
            reason: String::new(),
        },
        CacheOutcome::Failed {
            error: String::new(),
        },
        CacheOutcome::NotAttempted,
    ];
    let text = paragraph(&output_md(), "Build cache outcome kinds:");
    let documented = code_spans(&text);
    for o in &outcomes {
        match o {
            CacheOutcome::Deleted
            | CacheOutcome::Skipped { .. }
            | CacheOutcome::Failed { .. }
            | CacheOutcome::NotAttempted => {}
        }
        assert!(
            documented.contains(o.kind()),
            "{} missing from: {text}",
            o.kind()
        );
    }
}

#[tokio::test]
async fn the_build_cache_json_fields_are_the_documented_ones() {
    let engine = FakeEngine::builder()
        .clock(now())
        .cache_record(cache_record("r1", 10, 10))
        .build();
    let cfg = stagesweep::config::embedded_default();
    let r = pass(&engine, &cfg, false).await;
    let all = stagesweep::report::ALL_ACTIONS;
    let doc = serde_json::to_value(stagesweep::report::to_json(&r, &all)).expect("json");
    let text = output_md();
    let table = &text[text
        .find("`--output json` prints one document")
        .expect("section")..];
    let row = |field: &str| -> BTreeSet<String> {
        let start =
            (table.find(&format!("| `{field}` |"))).unwrap_or_else(|| panic!("no row for {field}"));
        code_spans(table[start..].lines().next().expect("row"))
    };
    let cache_row = row("build_cache");
    let cache = doc["build_cache"].as_object().expect("build_cache");
    for key in cache.keys() {
        let shown = if key == "records" { "records[]" } else { key };
        assert!(
            cache_row.contains(shown) || cache_row.iter().any(|s| s.starts_with(shown)),
            "build_cache.{key} undocumented"
        );
    }
    let first = doc["build_cache"]["records"][0]
        .as_object()
        .expect("a record");
    assert_eq!(
        first["outcome"]["kind"], "deleted",
        "the default rule deleted it"
    );
    for key in first.keys() {
        assert!(
            cache_row.contains(key),
            "build_cache.records[].{key} undocumented"
        );
    }
    let summary_row = row("summary");
    for key in doc["summary"]["build_cache"]
        .as_object()
        .expect("object")
        .keys()
    {
        assert!(
            summary_row.contains(key),
            "summary.build_cache.{key} undocumented"
        );
    }
}

#[test]
fn the_readme_is_a_front_door_of_at_most_250_lines() {
    let readme = page("README.md");
    let lines = readme.lines().count();
    assert!(
        lines <= 250,
        "README.md has {lines} lines: move reference text to docs/ and link to it"
    );
    for must in [
        "## Quick start",
        "## Install",
        "docs/configuration.md",
        "stagesweep plan",
    ] {
        assert!(readme.contains(must), "the README lost {must:?}");
    }
}

/// The pages whose links are checked: README.md, CONTRIBUTING.md and docs/*.md.
fn pages() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut pages: Vec<PathBuf> = std::fs::read_dir(root.join("docs"))
        .expect("docs/")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    pages.sort();
    pages.splice(0..0, [root.join("README.md"), root.join("CONTRIBUTING.md")]);
    pages
}

/// GitHub's anchor for a heading: lowercase, punctuation dropped, spaces as `-`.
fn slug(heading: &str) -> String {
    heading
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

/// The anchors of a Markdown page's headings (a repeated one gets `-1`, `-2`, …, as on
/// GitHub), and the destinations of its links.
fn anchors_and_links(markdown: &str) -> (BTreeSet<String>, Vec<String>) {
    let mut anchors = BTreeSet::new();
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut links = Vec::new();
    let mut heading: Option<String> = None;
    for event in Parser::new_ext(markdown, Options::ENABLE_TABLES) {
        match event {
            Event::Start(Tag::Heading { .. }) => heading = Some(String::new()),
            Event::Text(t) | Event::Code(t) => {
                if let Some(h) = &mut heading {
                    h.push_str(&t);
                }
            }
            Event::End(TagEnd::Heading(_)) => {
                let base = slug(&heading.take().unwrap_or_default());
                let n = seen.entry(base.clone()).or_default();
                anchors.insert(if *n == 0 {
                    base.clone()
                } else {
                    format!("{base}-{n}")
                });
                *n += 1;
            }
            Event::Start(Tag::Link { dest_url, .. } | Tag::Image { dest_url, .. }) => {
                links.push(dest_url.to_string());
            }
            _ => {}
        }
    }
    (anchors, links)
}

#[test]
fn every_relative_link_names_an_existing_file_and_heading() {
    let mut broken = Vec::new();
    let mut checked = 0;
    for from in pages() {
        let (_, links) = anchors_and_links(&std::fs::read_to_string(&from).expect("a page"));
        for link in links {
            if link.contains("://") || link.starts_with("mailto:") {
                continue;
            }
            checked += 1;
            let (path, anchor) = link.split_once('#').unwrap_or((&link, ""));
            let target = if path.is_empty() {
                from.clone()
            } else {
                from.parent().expect("a directory").join(path)
            };
            let name = from.file_name().expect("a name").to_string_lossy();
            if !target.exists() {
                broken.push(format!("{name}: {link}: no such file"));
                continue;
            }
            if anchor.is_empty() {
                continue;
            }
            let text = std::fs::read_to_string(&target).unwrap_or_default();
            if !anchors_and_links(&text).0.contains(anchor) {
                broken.push(format!("{name}: {link}: no such heading"));
            }
        }
    }
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
    assert!(checked > 50, "only {checked} links checked");
}
