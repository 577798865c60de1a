//! The disk pages against the code: the `eviction` section of the JSON document and its end
//! kinds (docs/output.md), the disk pressure line and the summary line's bytes as the docs
//! show them, and the `check-config` line of docs/configuration.md as `pass::disk` renders it.

use std::collections::BTreeSet;
use std::path::Path;

use stagesweep::config;
use stagesweep::engine::fake::{FakeEngine, image};
use stagesweep::engine::{EngineInfo, ImageStore};
use stagesweep::execute::{EvictionEnd, EvictionReport, EvictionWave, Summary};
use stagesweep::pass::disk::{Basis, Gauge};

use crate::support::passes::{hours, now, pass};

fn page(path: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(path))
        .unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The code spans of the row of `field` in docs/output.md's JSON table.
fn row(field: &str) -> BTreeSet<String> {
    let text = page("docs/output.md");
    let start = text
        .find(&format!("| `{field}` |"))
        .unwrap_or_else(|| panic!("no row for {field}"));
    let line = text[start..].lines().next().expect("row");
    line.split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn the_eviction_section_is_documented_field_by_field() {
    // Nine 1000-byte candidates of a 10 000-byte budget: 90 % used, one eviction.
    let mut b = FakeEngine::builder().clock(now());
    for k in 0..9 {
        b = b.image(
            image(&format!("u{k}"))
                .label("stage", "builder")
                .age(now(), hours(10 + k))
                .size(1000),
        );
    }
    let cfg = config::parse_str(
        "policies:\n  - name: p\n    match:\n      labels: [stage=builder]\n    when: disk_pressure\n\
         disk:\n  measure: api\n  max_images_bytes: 10000\n",
        "t.yaml",
    )
    .expect("valid");
    let r = pass(&b.build(), &cfg, false).await;
    let doc = serde_json::to_value(stagesweep::report::to_json(
        &r,
        &stagesweep::report::ALL_ACTIONS,
    ))
    .expect("json");
    let eviction = doc["eviction"].as_object().expect("an eviction section");
    let documented = row("eviction");
    for key in eviction.keys() {
        assert!(documented.contains(key), "eviction.{key} undocumented");
    }
    for key in doc["eviction"]["waves"][0]
        .as_object()
        .expect("a wave")
        .keys()
    {
        assert!(
            documented.contains(key),
            "eviction.waves[].{key} undocumented"
        );
    }
    let ends = [
        EvictionEnd::LowReached,
        EvictionEnd::NothingLeft,
        EvictionEnd::Stopped,
        EvictionEnd::NotMeasured { error: "e".into() },
    ];
    for end in ends {
        let kind = serde_json::to_value(&end).expect("json")["kind"].clone();
        let kind = kind.as_str().expect("a kind");
        assert!(documented.contains(kind), "end kind {kind} undocumented");
    }
    let summary = row("summary");
    for key in [
        "estimated_bytes",
        "held_by_build_cache_bytes",
        "measured_bytes",
        "measured_on",
        "disk_pressure_stuck",
    ] {
        assert!(summary.contains(key), "summary.{key} undocumented");
    }
}

#[test]
fn the_disk_pressure_line_is_printed_as_documented() {
    let wave = |deleted| EvictionWave {
        images: 3,
        deleted,
        estimated_bytes: 0,
        used_permille_before: 960,
    };
    let e = EvictionReport {
        measured: "/var/lib/containerd".into(),
        resource: "space".into(),
        high_percent: 85,
        low_percent: 80,
        planned_permille: 960,
        final_permille: Some(795),
        candidates: 12,
        estimated: 3,
        taken: 6,
        waves: vec![wave(3), wave(2)],
        end: EvictionEnd::LowReached,
        stuck: false,
    };
    let line = stagesweep::report::eviction::text(&e);
    let output = page("docs/output.md");
    assert!(output.contains(&format!("```text\n{line}\n```")), "{line}");
    let stuck = stagesweep::report::eviction::text(&EvictionReport {
        end: EvictionEnd::NothingLeft,
        stuck: true,
        ..e
    });
    let tail = &stuck[stuck.rfind(", still").expect("stuck")..];
    assert!(output.contains(&format!("`…{tail}`")), "{tail}");
}

#[test]
fn the_summary_lines_bytes_read_as_documented() {
    let measured = Summary {
        deleted: 3,
        estimated_bytes: 33_600_000,
        measured_bytes: Some(26_400_000),
        measured_on: Some("/var/lib/docker".into()),
        reclaimed_bytes: 26_400_000,
        ..Summary::default()
    };
    let line = stagesweep::report::summary_line(&measured, 0, 3, true);
    let shown = "reclaimed 26.4 MB (measured on /var/lib/docker; estimated 33.6 MB)";
    assert!(line.contains(shown), "{line}");
    let estimate = Summary {
        deleted: 2,
        estimated_bytes: 20_000_000,
        reclaimed_bytes: 20_000_000,
        ..Summary::default()
    };
    let line = stagesweep::report::summary_line(&estimate, 0, 2, true);
    let output = page("docs/output.md");
    for text in [shown, "reclaimed ~20.0 MB (estimate)"] {
        assert!(output.contains(text), "docs/output.md lacks {text:?}");
    }
    assert!(
        line.contains("reclaimed ~20.0 MB (estimate), kept"),
        "{line}"
    );
    let held = Summary {
        held_by_build_cache_bytes: 7_200_000,
        reclaimed_bytes: 12_800_000,
        ..estimate
    };
    let line = stagesweep::report::summary_line(&held, 0, 2, true);
    let tail = "; 7.2 MB of their layers stay in the build cache until it goes";
    assert!(
        line.contains(&format!("~12.8 MB (estimate{tail})")),
        "{line}"
    );
    assert!(output.contains(&format!("`{tail}`")), "{tail}");
}

#[test]
fn the_check_config_disk_line_is_rendered_as_documented() {
    let info = EngineInfo {
        image_store: ImageStore::Containerd,
        ..EngineInfo::default()
    };
    let g = Gauge::Statvfs {
        path: "/var/lib/containerd".into(),
        basis: Basis::ContainerdRoot(false),
    };
    let line = format!("disk: the watermarks measure {}", g.describe(&info));
    let text = page("docs/configuration.md");
    assert!(text.contains(&format!("```text\n{line}\n```")), "{line}");
}
