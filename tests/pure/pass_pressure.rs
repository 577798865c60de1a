//! Whole passes over `high` on the fake engine, measured with `measure: api` (the images'
//! bytes against a budget, read again from the listing after each wave): eviction goes on
//! while the measurement says `low` is not reached, stops as soon as it is, and says when
//! nothing is left; the plan and the report say what was done.

use crate::support;

use stagesweep::config::Config;
use stagesweep::engine::fake::{Call, FakeEngine, fake_id, image};
use stagesweep::execute::{EvictionEnd, Outcome};
use stagesweep::inventory::ImageId;
use stagesweep::pass::{PassError, PassOptions, PassReport, run_pass};
use stagesweep::plan::Action;
use support::passes::{config, hours, now, old_builder, outcome_of, pass};
use tokio_util::sync::CancellationToken;

/// Nine `stage=builder` images of 1000 bytes, `u0` the least recently used (the oldest).
fn engine() -> FakeEngine {
    let mut b = FakeEngine::builder().clock(now());
    for k in 0..9 {
        b = b.image(candidate(k));
    }
    b.build()
}

/// Tagged, with a tag time that only inspect tells (the executor compares it with the one
/// planned with: every candidate's must be known, beyond the estimate too).
fn candidate(k: u64) -> stagesweep::inventory::Image {
    let mut image = image(&format!("u{k}"))
        .label("stage", "builder")
        .tag(&format!("app{k}:1"))
        .age(now(), hours(100 - k))
        .size(1000)
        .build();
    image.last_tagged = Some(image.created);
    image
}

/// A `disk_pressure` policy on them, 85 / 80 of a 10 000-byte budget: 90 % used.
fn pressure(extra_policies: &str) -> Config {
    pressure_to(extra_policies, 80)
}

/// [`pressure`] with `low` at `low` percent.
fn pressure_to(extra_policies: &str, low: u8) -> Config {
    config(&format!(
        "policies:\n{extra_policies}  - name: pressure\n    match:\n      labels: [stage=builder]\n    \
         min_age: 1h\n    when: disk_pressure\n\
         disk:\n  high: 85\n  low: {low}\n  measure: api\n  max_images_bytes: 10000\n"
    ))
}

/// Of every image deleted, the engine keeps `kept` per mille somewhere the policies cannot
/// reach (as BuildKit's cache keeps the layers of an image it built): an unmatched image
/// whose size grows with the deletions, seen by the next listing.
fn keeps(engine: &FakeEngine, kept: u64) {
    let all: Vec<ImageId> = (0..9).map(|k| fake_id(&format!("u{k}"))).collect();
    engine.set_hook(Box::new(move |call, world| {
        if call != Call::ListImages {
            return;
        }
        let gone = all
            .iter()
            .filter(|id| !world.images.iter().any(|i| i.id == **id));
        let held = u64::try_from(gone.count()).expect("few") * kept;
        world.images.retain(|i| i.id != fake_id("held"));
        if held > 0 {
            world.images.push(image("held").size(held).build());
        }
    }));
}

fn kinds(r: &PassReport) -> Vec<&'static str> {
    (0..9)
        .map(|k| {
            let d = r.decision_for(fake_id(&format!("u{k}"))).expect("planned");
            d.reason.kind()
        })
        .collect()
}

fn deleted(engine: &FakeEngine) -> Vec<ImageId> {
    engine.deleted_ids()
}

fn seeds(ks: &[u64]) -> Vec<ImageId> {
    ks.iter().map(|k| fake_id(&format!("u{k}"))).collect()
}

#[tokio::test]
async fn when_the_estimate_falls_short_the_pass_measures_and_evicts_further() {
    let engine = engine();
    keeps(&engine, 500);
    let r = pass(&engine, &pressure(""), false).await;
    // 1000 bytes to free: the estimate planned u0. Measured, it freed 500: a second wave.
    let e = r.eviction.as_ref().expect("evicted");
    assert_eq!((e.candidates, e.estimated, e.taken), (9, 1, 2));
    assert_eq!(e.waves.len(), 2, "{e:#?}");
    assert_eq!(e.waves[0].used_permille_before, 900);
    assert_eq!(e.waves[1].used_permille_before, 850);
    assert_eq!(e.end, EvictionEnd::LowReached);
    assert_eq!(e.final_permille, Some(800));
    assert!(!e.stuck && !r.summary.disk_pressure_stuck);
    assert_eq!(
        deleted(&engine),
        seeds(&[0, 1]),
        "least recently used first"
    );
    // The plan says what was done: u1 is a disk_pressure deletion now, and deleted.
    let mut want = vec!["disk_pressure"; 2];
    want.extend(["no_disk_pressure"; 7]);
    assert_eq!(kinds(&r), want);
    assert_eq!(r.plan.deletions.len(), 2);
    assert!(r.results.iter().all(|x| x.outcome == Outcome::Deleted));
    assert_eq!(r.summary.deleted, 2);
    let first = r.plan.order[..2]
        .iter()
        .map(|&i| r.image(&r.plan.decisions[i]).id);
    assert_eq!(first.collect::<Vec<_>>(), seeds(&[0, 1]), "deletions first");
    // A dry run shows the estimate's plan and changes nothing.
    let engine = engine_with_keeps(500);
    let dry = pass(&engine, &pressure(""), true).await;
    assert_eq!(dry.plan.deletions.len(), 1);
    assert!(dry.eviction.is_none() && engine.calls().is_empty());
}

fn engine_with_keeps(kept: u64) -> FakeEngine {
    let e = engine();
    keeps(&e, kept);
    e
}

#[tokio::test]
async fn each_wave_covers_what_is_still_missing_by_estimate() {
    // Down to 70 %: 2000 bytes to free, and each deletion frees only 100 of its 1000.
    let engine = engine_with_keeps(900);
    let r = pass(&engine, &pressure_to("", 70), false).await;
    let e = r.eviction.as_ref().expect("evicted");
    let sizes: Vec<usize> = e.waves.iter().map(|w| w.images).collect();
    let before: Vec<u32> = e.waves.iter().map(|w| w.used_permille_before).collect();
    // 2000, 1800, 1600, 1400 missing: two units a wave; then the last candidate.
    assert_eq!(sizes, [2, 2, 2, 2, 1]);
    assert_eq!(before, [900, 880, 860, 840, 820]);
    assert_eq!(e.end, EvictionEnd::NothingLeft);
    assert!(!e.stuck, "81 % is under high: relieved, if not to low");
    assert_eq!(e.final_permille, Some(810));
    let line = stagesweep::report::eviction::line(&r).expect("a line");
    assert!(
        line.ends_with("now 81.0%, above low 70% with nothing left to evict"),
        "{line}"
    );
}

#[tokio::test]
async fn an_exact_estimate_takes_one_wave_and_no_more() {
    let engine = engine();
    let r = pass(&engine, &pressure(""), false).await;
    let e = r.eviction.as_ref().expect("evicted");
    assert_eq!((e.estimated, e.taken, e.waves.len()), (1, 1, 1));
    assert_eq!(e.end, EvictionEnd::LowReached);
    assert_eq!(deleted(&engine), seeds(&[0]));
}

#[tokio::test]
async fn other_deletions_that_free_more_than_estimated_leave_the_estimate_unspent() {
    // `junk` (another policy, always) is estimated at 200 bytes (800 of it shared) but its
    // deletion frees all 1000 in the measurement: the disk is at 80 % before any wave.
    let mut b = FakeEngine::builder().clock(now());
    for k in 0..7 {
        b = b.image(candidate(k));
    }
    // 7000 + 1000 + 1000 of 10 000 bytes: 90 % used.
    let engine = b
        .image(
            old_builder("junk")
                .label("junk", "1")
                .size(1000)
                .shared(800),
        )
        .image(image("base").size(1000).shared(800))
        .build();
    let junk = "  - name: junk\n    match:\n      labels: [junk]\n    min_age: 1h\n";
    let r = pass(&engine, &pressure(junk), false).await;
    let e = r.eviction.as_ref().expect("over high");
    assert_eq!(e.estimated, 1, "800 bytes still to free by estimate: u0");
    assert_eq!((e.taken, e.waves.len()), (0, 0));
    assert_eq!(e.end, EvictionEnd::LowReached);
    assert_eq!(deleted(&engine), vec![fake_id("junk")]);
    let u0 = r.decision_for(fake_id("u0")).expect("planned");
    assert_eq!(u0.reason.kind(), "no_disk_pressure", "not needed after all");
    assert_eq!(u0.action, Action::Keep);
    assert_eq!(r.plan.deletions.len(), 1);
}

#[tokio::test]
async fn when_nothing_is_left_to_evict_the_pass_says_the_pressure_is_stuck() {
    let engine = engine_with_keeps(1000);
    let r = pass(&engine, &pressure(""), false).await;
    let e = r.eviction.as_ref().expect("evicted");
    assert_eq!(e.taken, 9, "every candidate, in waves");
    assert_eq!(e.end, EvictionEnd::NothingLeft);
    assert!(e.stuck && r.summary.disk_pressure_stuck);
    assert_eq!(e.final_permille, Some(900));
    assert_eq!(deleted(&engine).len(), 9);
    let line = stagesweep::report::eviction::line(&r).expect("a line");
    assert!(
        line.ends_with(
            "still at or over high 85% with nothing left that disk_pressure policies may evict"
        ),
        "{line}"
    );
}

#[tokio::test]
async fn over_high_with_no_candidate_at_all_the_pressure_is_stuck() {
    // measure: api over the budget, and the policy matches nothing evictable.
    let engine = FakeEngine::builder()
        .clock(now())
        .image(image("big").size(9500))
        .image(candidate(0))
        .container(stagesweep::engine::fake::container("c", "u0", "running"))
        .build();
    let r = pass(&engine, &pressure(""), false).await;
    let e = r.eviction.as_ref().expect("over high");
    assert_eq!((e.candidates, e.taken, e.waves.len()), (0, 0, 0));
    assert_eq!(e.end, EvictionEnd::NothingLeft);
    assert!(e.stuck && r.summary.disk_pressure_stuck, "{e:#?}");
    assert!(engine.calls().is_empty());
    // A dry run measures nothing more and claims nothing.
    let dry = pass(&engine, &pressure(""), true).await;
    assert!(dry.eviction.is_none() && !dry.summary.disk_pressure_stuck);
}

#[tokio::test]
async fn another_policys_parent_of_a_candidate_waits_for_it() {
    // `p` (policy junk, always) is the parent of candidate u0: it goes after u0, never before.
    let mut b = FakeEngine::builder().clock(now());
    b = b.image(old_builder("p").label("junk", "1").size(500));
    b = b.image(
        image("u0")
            .label("stage", "builder")
            .parent("p")
            .age(now(), hours(100))
            .size(1500),
    );
    for k in 1..9 {
        b = b.image(candidate(k));
    }
    let engine = b.build();
    keeps(&engine, 0);
    let junk = "  - name: junk\n    match:\n      labels: [junk]\n    min_age: 1h\n";
    let r = pass(&engine, &pressure(junk), false).await;
    assert_eq!(deleted(&engine), vec![fake_id("u0"), fake_id("p")]);
    let waves: Vec<usize> = r.plan.deletions.iter().map(|d| d.wave).collect();
    assert!(waves.windows(2).all(|w| w[0] < w[1]), "{waves:?}");
    // p's bytes count: after u0 and p, the disk is at 80 %, no second wave.
    let e = r.eviction.as_ref().expect("evicted");
    assert_eq!((e.taken, e.end.clone()), (1, EvictionEnd::LowReached));
    assert_eq!(outcome_of(&r, "p"), &Outcome::Deleted);
}

#[tokio::test]
async fn a_remote_engine_is_never_measured_here_and_its_disk_pressure_policies_delete_nothing() {
    let mut b = FakeEngine::builder()
        .clock(now())
        .remote("tcp://10.0.0.7:2375");
    for k in 0..9 {
        b = b.image(candidate(k));
    }
    let engine = b.build();
    let cfg = config(
        "policies:\n  - name: pressure\n    match:\n      labels: [stage=builder]\n    \
         min_age: 1h\n    when: disk_pressure\ndisk:\n  high: 1\n  low: 0\n",
    );
    // prune and plan require the disk: the pass fails as a whole, naming the key.
    let opts = PassOptions {
        require_disk: true,
        ..PassOptions::default()
    };
    let stop = CancellationToken::new();
    let err = run_pass(&engine, &cfg, now(), &opts, &stop)
        .await
        .expect_err("refused");
    let PassError::Disk(e) = &err else {
        panic!("{err}")
    };
    assert_eq!(e.key(), "disk.path");
    // The agent's passes go on: the policies delete nothing, saying why.
    let r = pass(&engine, &cfg, false).await;
    assert!(engine.calls().is_empty() && r.eviction.is_none());
    assert!(
        kinds(&r).iter().all(|k| *k == "disk_not_measured"),
        "{:?}",
        kinds(&r)
    );
    let why = r
        .decision_for(fake_id("u0"))
        .expect("planned")
        .reason
        .to_string();
    assert!(why.contains("tcp://10.0.0.7:2375 is remote"), "{why}");
}
