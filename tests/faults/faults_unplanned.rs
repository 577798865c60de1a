//! The two races no engine API closes, driven for real on the test daemon: a proxy holds
//! stagesweep's first `DELETE` while the test, as another actor, moves or adds a tag; then the
//! daemon removes more than was planned, and the run must say so — an error log line, the
//! JSON report's `unplanned_removals`, exit 1 — never a silent success.
//!
//! - a name moved onto another image while its untag by name was held: the daemon untags it
//!   from that image and deletes it (it had no other tag and no child);
//! - a tag added to a dangling image while its delete by ID was held: the daemon untags the
//!   new tag and deletes the image.

use crate::support;

use bollard::query_parameters::TagImageOptionsBuilder;
use serde_json::Value;
use support::accounting;
use support::fixture::{FixtureImage, days_ago, load};
use support::gate_proxy::GateProxy;
use support::{Scope, docker_host};

const LOG_LINE: &str = "the engine removed what the plan did not ask for";

async fn tag(scope: &Scope, image: &str, reference: &str) {
    let (repo, tag) = reference.rsplit_once(':').expect("repo:tag");
    let opts = TagImageOptionsBuilder::new().repo(repo).tag(tag).build();
    scope
        .docker
        .tag_image(image, Some(opts))
        .await
        .expect("docker tag");
}

/// Open the gate, wait for the prune and return its JSON report and stderr; the run must
/// exit 1 and log the unplanned removal at error level.
async fn finish(
    proxy: &GateProxy,
    prune: tokio::task::JoinHandle<(Option<i32>, String, String)>,
) -> (Value, String) {
    proxy.open();
    let (code, stdout, stderr) = tokio::time::timeout(std::time::Duration::from_secs(300), prune)
        .await
        .expect("prune finishes")
        .expect("prune task");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(
        code,
        Some(1),
        "an unplanned removal fails the run; stderr:\n{stderr}"
    );
    assert!(
        stderr.contains(LOG_LINE),
        "logged at error level:\n{stderr}"
    );
    assert!(stderr.contains("ERROR"), "at error level:\n{stderr}");
    let doc: Value = serde_json::from_str(&stdout).expect("json report");
    accounting::check(&doc);
    (doc, stderr)
}

/// The report's `unplanned_removals` (absent when there were none).
fn unplanned(doc: &Value) -> Vec<Value> {
    match &doc["unplanned_removals"] {
        Value::Null => Vec::new(),
        list => list.as_array().expect("unplanned_removals[]").clone(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_name_moved_during_its_untag_takes_another_image_and_is_reported() {
    let scope = Scope::new("unplanned-move").await;
    let (first, second) = (scope.tag("one"), scope.tag("two"));
    // The planned image has two tags, so its first DELETE is an untag by name.
    let planned = load(
        &scope.docker,
        &[FixtureImage::new(&scope.label(), days_ago(2))
            .label("stage", "builder")
            .tag(&first)
            .tag(&second)],
    )
    .await;
    // Another actor's image: not matched by the policy, untagged, no child.
    let other = load(
        &scope.docker,
        &[FixtureImage::new(&scope.label(), days_ago(2)).label("stage", "runtime")],
    )
    .await;
    let proxy = GateProxy::start(&docker_host());
    let prune = proxy.prune(&scope.selector(), "1h");
    proxy.wait_for_delete().await;
    let held = proxy.held_name().expect("the held DELETE names something");
    assert!(
        held == first || held == second,
        "the first DELETE untags a name of the planned image, not {held}"
    );
    // The other actor moves that very name onto its own image.
    tag(&scope, &other[0], &held).await;

    let (doc, _) = finish(&proxy, prune).await;
    let removals = unplanned(&doc);
    let hit = removals
        .iter()
        .find(|u| u["reference"].as_str() == Some(held.as_str()))
        .unwrap_or_else(|| panic!("the moved name {held} is reported: {removals:?}"));
    let deleted: Vec<&str> = hit["deleted"]
        .as_array()
        .expect("deleted[]")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        deleted.contains(&other[0].as_str()),
        "the other image, which the daemon deleted with the name, is named: {hit}"
    );
    assert_eq!(hit["while_deleting"].as_str(), Some(planned[0].as_str()));
    assert_eq!(
        doc["summary"]["unplanned_removals"].as_u64(),
        Some(removals.len() as u64)
    );
    let left: Vec<String> = scope.images().await.into_iter().map(|i| i.id).collect();
    assert!(!left.contains(&other[0]), "the daemon did delete it");
    scope.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tag_added_during_a_delete_by_id_is_reported() {
    let scope = Scope::new("unplanned-add").await;
    let dangling = load(
        &scope.docker,
        &[FixtureImage::new(&scope.label(), days_ago(2)).label("stage", "builder")],
    )
    .await;
    let proxy = GateProxy::start(&docker_host());
    let prune = proxy.prune(&scope.selector(), "1h");
    proxy.wait_for_delete().await;
    let held = proxy.held_name().expect("the held DELETE names something");
    assert_eq!(held, dangling[0], "a dangling image is deleted by ID");
    // The other actor tags the image while its delete is on its way.
    let late = scope.tag("late");
    tag(&scope, &dangling[0], &late).await;

    let (doc, _) = finish(&proxy, prune).await;
    let removals = unplanned(&doc);
    assert!(
        removals
            .iter()
            .any(|u| u["reference"].as_str() == Some(late.as_str())
                && u["while_deleting"].as_str() == Some(dangling[0].as_str())),
        "the tag added in the window, which the daemon removed, is reported: {removals:?}"
    );
    scope.cleanup().await;
}

/// The window narrowed: a name moved away before its re-check is not untagged, and nothing
/// is reported. With `tags` names the planned image keeps the smallest for its delete by ID
/// and untags the others by name; the test holds the first untag and moves another name.
/// With two names the held untag is then of the image's last tag and deletes it, its layers
/// listed in the answer: still nothing unplanned.
async fn moved_before_its_re_check(test: &str, tags: &[&str]) {
    let scope = Scope::new(test).await;
    let names: Vec<String> = tags.iter().map(|t| scope.tag(t)).collect();
    let mut fixture = FixtureImage::new(&scope.label(), days_ago(2)).label("stage", "builder");
    for name in &names {
        fixture = fixture.tag(name);
    }
    let planned = load(&scope.docker, &[fixture]).await;
    let other = load(
        &scope.docker,
        &[FixtureImage::new(&scope.label(), days_ago(2)).label("stage", "runtime")],
    )
    .await;
    let proxy = GateProxy::start(&docker_host());
    let prune = proxy.prune(&scope.selector(), "1h");
    proxy.wait_for_delete().await;
    let held = proxy.held_name().expect("the held DELETE names something");
    let kept = names.iter().min().expect("names");
    assert!(
        names.contains(&held) && held != *kept,
        "an extra name is untagged first, not {held}"
    );
    // While that untag is held, another name moves; its re-check (if any) comes after.
    let later = (names.iter())
        .find(|n| **n != held && (names.len() == 2 || *n != kept))
        .expect("another name");
    tag(&scope, &other[0], later).await;
    proxy.open();
    let (code, stdout, stderr) = tokio::time::timeout(std::time::Duration::from_secs(300), prune)
        .await
        .expect("prune finishes")
        .expect("prune task");
    assert!(!stderr.contains(LOG_LINE), "nothing unplanned:\n{stderr}");
    assert_eq!(code, Some(0), "stderr:\n{stderr}");
    let doc: Value = serde_json::from_str(&stdout).expect("json report");
    let acc = accounting::check(&doc);
    assert_eq!(unplanned(&doc), Vec::<Value>::new());
    assert_eq!(
        acc.count("deleted"),
        1,
        "the planned image is deleted: {:?}",
        acc.by_kind
    );
    let left: Vec<String> = scope.images().await.into_iter().map(|i| i.id).collect();
    assert!(!left.contains(&planned[0]));
    let inspect = scope
        .docker
        .inspect_image(&other[0])
        .await
        .expect("the other image stays");
    assert!(
        inspect.repo_tags.unwrap_or_default().contains(later),
        "and keeps the name it was given"
    );
    scope.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_name_moved_before_its_re_check_is_left_alone() {
    moved_before_its_re_check("unplanned-recheck", &["one", "two", "three"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_untag_that_deletes_the_planned_image_with_its_layers_is_no_unplanned_removal() {
    moved_before_its_re_check("unplanned-last", &["one", "two"]).await;
}
