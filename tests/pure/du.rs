//! `stagesweep du`'s inputs on the fake engine ([`stagesweep::pass::survey`]): one `/info`,
//! one listing of images and containers and one data usage, and no per-image call, even for
//! the tagged image a `plan` would inspect for its tag time; the history is read and never
//! written, and a history that cannot be read is a note, not a failure.

use crate::support;

use std::sync::{Arc, Mutex};

use stagesweep::config::{Config, SpaceGroup};
use stagesweep::engine::fake::{FakeEngine, container, fake_id};
use stagesweep::report::du::{DuInput, group};
use support::passes::{builder_policy, cache_record, now, old_builder};

fn engine() -> (FakeEngine, Arc<Mutex<Vec<String>>>) {
    let engine = FakeEngine::builder()
        .clock(now())
        .image(old_builder("old").tag("app:old").label("project", "a"))
        .image(old_builder("untagged").label("project", "a"))
        .image(old_builder("used").tag("app:used").label("project", "b"))
        .container(container("ctr", "used", "running"))
        .cache_record(cache_record("r1", 3, 100))
        .build();
    let calls = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&calls);
    engine.set_hook(Box::new(move |call, _world| {
        log.lock().expect("not poisoned").push(format!("{call:?}"));
    }));
    (engine, calls)
}

fn with_history(path: &std::path::Path) -> Config {
    let mut config = builder_policy("b");
    path.clone_into(&mut config.history.path);
    config
}

#[tokio::test]
async fn du_lists_once_and_makes_no_per_image_call() {
    let (engine, calls) = engine();
    let dir = tempfile::tempdir().expect("temp dir");
    let config = with_history(&dir.path().join("history.json"));
    let s = stagesweep::pass::survey(&engine, &config, now())
        .await
        .expect("survey");
    let mut seen = calls.lock().expect("not poisoned").clone();
    seen.sort();
    assert_eq!(seen, ["DiskUsage", "Info", "ListContainers", "ListImages"]);
    assert!(
        s.notes.iter().any(|n| n.contains("no history file")),
        "{:?}",
        s.notes
    );
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
    let r = group(&input, &SpaceGroup::Label("project".into()), None);
    let a = r.groups.iter().find(|g| g.group == "a").expect("project a");
    assert_eq!((a.count, a.reclaimable_bytes), (2, 2000), "{r:#?}");
    let b = r.groups.iter().find(|g| g.group == "b").expect("project b");
    assert_eq!(b.protected_bytes, 1000, "in use");
    assert_eq!(
        r.total_bytes,
        3000 + 100,
        "the images and the build cache record"
    );
    assert!(s.inventory.images.iter().any(|i| i.id == fake_id("old")));
}

#[tokio::test]
async fn du_reads_the_history_without_writing_it_and_goes_on_without_it() {
    let (engine, _) = engine();
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("history.json");
    std::fs::write(&path, "not a history").expect("write");
    stagesweep::pass::survey(&engine, &with_history(&path), now())
        .await
        .expect("survey");
    assert_eq!(
        std::fs::read_to_string(&path).expect("still there"),
        "not a history",
        "never written, nor moved aside"
    );
    assert_eq!(
        std::fs::read_dir(dir.path()).expect("dir").count(),
        1,
        "no lock file either"
    );

    // A directory where the file should be: it cannot be read.
    let unreadable = dir.path().join("dir");
    std::fs::create_dir(&unreadable).expect("mkdir");
    let s = stagesweep::pass::survey(&engine, &with_history(&unreadable), now())
        .await
        .expect("a history that cannot be read does not stop du");
    assert!(s.history.is_empty());
    assert!(
        s.notes.iter().any(|n| n.contains("without last use")),
        "{:?}",
        s.notes
    );
}
