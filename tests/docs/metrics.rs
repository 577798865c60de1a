//! The metrics as operators consume them: `promtool check metrics` finds nothing to say about
//! the exposition, the metrics table of docs/metrics.md lists exactly the metrics that exist
//! (with their types), the alerting rules pass `promtool check rules` and their unit tests,
//! and the rules and the Grafana dashboard reference only metrics that exist. A metric added
//! to `src/agent/metrics/register.rs` without a row in docs/metrics.md, or a dashboard query with a
//! typo, fails here.
//! (The exposition of a live agent is checked in `tests/agent/agent_daemon.rs`.)

use crate::support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use stagesweep::agent::SkipReason;
use stagesweep::agent::exposition::Format;
use stagesweep::agent::forecast::{Forecast, Outlook, Resource};
use stagesweep::agent::metrics::Metrics;
use stagesweep::execute::Summary;
use support::tools::{self, promtool};

fn repo(path: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// The 0.0.4 exposition with every family holding at least one sample.
fn exposition() -> String {
    let m = Metrics::new();
    let mut s = Summary {
        deleted: 2,
        skipped: 1,
        failed: 1,
        unplanned_removals: 1,
        duration_secs: 0.3,
        ..Summary::default()
    };
    s.deleted_by_policy.insert("builder-stages".into(), 2);
    s.bytes_by_policy.insert("builder-stages".into(), 4096);
    s.matched_by_policy.insert("builder-stages".into(), 5);
    s.kept_by_reason.insert("younger_than_min_age".into(), 3);
    s.build_cache
        .bytes_by_rule
        .insert("stale-build-cache".into(), 1024);
    m.record_summary(&s, chrono::Utc::now());
    m.record_failure(0.1);
    m.tick_skipped(SkipReason::DockerUnreachable);
    m.set_next_pass(Some(chrono::Utc::now()));
    m.set_docker_up(true);
    m.config_reload(true);
    m.set_history(false, Some(chrono::Utc::now()));
    m.set_forecast(&filling());
    m.groups.set(&group_report());
    m.encode_as(Format::Text)
}

/// A disk filling in bytes and inodes, each with a time until `high`.
fn filling() -> Forecast {
    let outlook = |resource, rate_per_sec| Outlook {
        resource,
        rate_per_sec,
        eta: Some(std::time::Duration::from_secs(600)),
        used_ratio: 0.5,
    };
    Forecast {
        space: Some(outlook(Resource::Space, 1e6)),
        inodes: Some(outlook(Resource::Inodes, 10.0)),
    }
}

/// A `du` report of one group, for `stagesweep_group_bytes`.
fn group_report() -> stagesweep::report::du::DuReport {
    use stagesweep::report::du::{DuReport, DuRow, RowKind, State};
    let mut row = DuRow::new("builder-stages", RowKind::Images);
    row.add(State::Reclaimable, 4096, None);
    DuReport {
        by: "policy".into(),
        planned_at: chrono::Utc::now(),
        groups: vec![row],
        total_bytes: 4096,
        engine_total_bytes: None,
        notes: Vec::new(),
    }
}

/// Metric family name → type, from the `# TYPE` lines.
fn families(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_once(' '))
        .map(|(n, t)| (n.to_owned(), t.to_owned()))
        .collect()
}

/// Every series name a query may use: the families, plus a histogram's `_bucket`, `_sum` and
/// `_count`.
fn series_names() -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for (name, kind) in families(&exposition()) {
        if kind == "histogram" {
            for suffix in ["_bucket", "_sum", "_count"] {
                names.insert(format!("{name}{suffix}"));
            }
        }
        names.insert(name);
    }
    names
}

#[test]
fn promtool_check_metrics_has_nothing_to_say() {
    let text = exposition();
    let (ok, said) = tools::check_metrics(&text);
    assert!(
        ok && said.trim().is_empty(),
        "promtool:\n{said}\non:\n{text}"
    );
}

/// (name, type) rows of the metrics table of docs/metrics.md (its first section, up to the
/// next heading): every backticked metric name in the first column, labels stripped.
fn readme_rows() -> BTreeMap<String, String> {
    let readme = std::fs::read_to_string(repo("docs/metrics.md")).expect("docs/metrics.md");
    let start = readme.find("# Metrics\n").expect("a # Metrics title");
    let section = &readme[start..];
    let end = section[1..].find("\n#").map_or(section.len(), |e| e + 1);
    let mut rows = BTreeMap::new();
    for line in section[..end].lines().filter(|l| l.starts_with("| `")) {
        let cells: Vec<&str> = line.split(" | ").collect();
        for name in cells[0].split('`').skip(1).step_by(2) {
            let name = name.split('{').next().expect("a name");
            rows.insert(name.to_owned(), cells[1].trim().to_owned());
        }
    }
    rows
}

#[test]
fn the_readme_table_lists_exactly_the_metrics_with_their_types() {
    let rows = readme_rows();
    let families = families(&exposition());
    assert_eq!(
        rows.keys().collect::<Vec<_>>(),
        families.keys().collect::<Vec<_>>(),
        "docs/metrics.md table vs /metrics"
    );
    for (name, kind) in &families {
        assert_eq!(&rows[name], kind, "type of {name} in docs/metrics.md");
    }
}

/// Names in a `PromQL` expression that look like metrics (`stagesweep_…`, `process_…`).
fn metrics_in(expr: &str) -> Vec<String> {
    let mut out = Vec::new();
    let bytes: Vec<char> = expr.chars().collect();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        if c.is_ascii_alphabetic() || c == '_' {
            let start = i;
            while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == '_') {
                i += 1;
            }
            let word: String = bytes[start..i].iter().collect();
            if word.starts_with("stagesweep_") || word.starts_with("process_") {
                out.push(word);
            }
        } else {
            i += 1;
        }
    }
    out
}

#[test]
fn alerting_rules_check_pass_their_unit_tests_and_use_existing_metrics() {
    let dir = repo("deploy/prometheus");
    let (ok, said) = promtool(&["check", "rules", "alerts.yaml"], "", &dir);
    assert!(ok, "promtool check rules:\n{said}");
    let (ok, said) = promtool(&["test", "rules", "alerts.test.yaml"], "", &dir);
    assert!(ok, "promtool test rules:\n{said}");
    let known = series_names();
    let rules = std::fs::read_to_string(dir.join("alerts.yaml")).expect("alerts.yaml");
    let exprs: Vec<&str> = rules
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .collect();
    let used = metrics_in(&exprs.join("\n"));
    assert!(used.len() >= 6, "{used:?}");
    for name in used {
        assert!(
            known.contains(&name),
            "alerts.yaml uses unknown metric {name}"
        );
    }
}

#[test]
fn the_dashboard_is_well_formed_and_queries_only_existing_metrics() {
    let text = std::fs::read_to_string(repo("deploy/grafana/stagesweep.json")).expect("dashboard");
    let dash: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
    assert_eq!(dash["uid"], "stagesweep");
    let vars: BTreeSet<&str> = dash["templating"]["list"]
        .as_array()
        .expect("templating.list")
        .iter()
        .map(|v| v["name"].as_str().expect("variable name"))
        .collect();
    assert_eq!(vars, BTreeSet::from(["datasource", "instance"]));
    let known = series_names();
    let panels = dash["panels"].as_array().expect("panels");
    assert!(panels.len() >= 10);
    let mut ids = BTreeSet::new();
    let mut exprs = vec![
        dash["templating"]["list"][1]["definition"]
            .as_str()
            .expect("instance query")
            .to_owned(),
    ];
    for p in panels {
        let title = p["title"].as_str().expect("title");
        assert!(
            ids.insert(p["id"].as_u64().expect("id")),
            "duplicate id: {title}"
        );
        assert_eq!(p["datasource"]["uid"], "${datasource}", "{title}");
        for key in ["x", "y", "w", "h"] {
            assert!(p["gridPos"][key].is_u64(), "{title}: gridPos.{key}");
        }
        let targets = p["targets"].as_array().expect("targets");
        assert!(!targets.is_empty(), "{title}: no query");
        for t in targets {
            let expr = t["expr"].as_str().expect("expr");
            assert!(
                expr.contains("$instance"),
                "{title}: not filtered by $instance: {expr}"
            );
            exprs.push(expr.to_owned());
        }
    }
    for expr in &exprs {
        let used = metrics_in(expr);
        assert!(!used.is_empty(), "no metric in {expr}");
        for name in used {
            assert!(
                known.contains(&name),
                "the dashboard uses unknown metric {name} in {expr}"
            );
        }
    }
}
