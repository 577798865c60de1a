//! `stagesweep du --output json` against docs/output.md: every field of the document and of
//! its rows has its line in the section.

use crate::support;

use stagesweep::config::SpaceGroup;
use stagesweep::engine::fake::FakeEngine;
use stagesweep::report::du::{DuInput, group};
use support::passes::{builder_policy, cache_record, now, old_builder};

#[tokio::test]
async fn the_du_json_fields_are_the_documented_ones() {
    let engine = FakeEngine::builder()
        .clock(now())
        .image(old_builder("a").label("project", "p"))
        .cache_record(cache_record("r", 3, 10))
        .build();
    let s = stagesweep::pass::survey(&engine, &builder_policy("b"), now())
        .await
        .expect("survey");
    let input = DuInput {
        images: &s.inventory.images,
        plan: &s.plan,
        records: s.inventory.build_cache.as_deref().unwrap_or_default(),
        cache: &s.cache,
        history: &s.history,
        layers_size: s.layers_size,
        planned_at: s.planned_at,
        gone_images: &[],
        gone_records: &[],
    };
    let doc = serde_json::to_value(group(&input, &SpaceGroup::Policy, None)).expect("json");
    let text = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/output.md"),
    )
    .expect("docs/output.md");
    let section = &text[text
        .find("## `stagesweep du --output json`")
        .expect("section")..];
    let row = |field: &str| -> &str {
        let start = section
            .find(&format!("| `{field}` |"))
            .unwrap_or_else(|| panic!("no row for {field} in docs/output.md"));
        section[start..].lines().next().expect("row")
    };
    for key in doc.as_object().expect("object").keys() {
        row(if key == "groups" { "groups[]" } else { key });
    }
    let groups = row("groups[]");
    let rows = doc["groups"].as_array().expect("rows");
    assert!(rows.len() >= 2, "{doc:#}");
    for r in rows {
        for key in r.as_object().expect("a row").keys() {
            assert!(
                groups.contains(&format!("`{key}`")),
                "groups[].{key} undocumented"
            );
        }
        let kind = r["kind"].as_str().expect("kind");
        assert!(
            groups.contains(&format!("`{kind}`")),
            "kind {kind} undocumented"
        );
    }
}
