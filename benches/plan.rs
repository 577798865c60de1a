//! Criterion benchmark of the pure planner at 1k, 10k and 100k synthetic images with ten
//! policies (`keep_last` with every `group_by`, `max_age`, `max_total_size`, protection).
//!
//! `cargo bench --bench plan`. Under `cargo test --all-targets` criterion runs each case once.
//! `cycle_guard` times the parent-cycle cut that `plan()` runs on its graph, alone.

use std::hint::black_box;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

#[path = "support/synth.rs"]
mod synth;

fn plan_at_scale(c: &mut Criterion) {
    let config = stagesweep::config::parse_str(synth::POLICIES_YAML, "bench.yaml")
        .expect("benches/support/policies.yaml is valid");
    let now = Utc
        .with_ymd_and_hms(2026, 11, 1, 12, 0, 0)
        .single()
        .expect("a fixed, valid time");
    let mut group = c.benchmark_group("plan");
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(5));
    for n in [1_000usize, 10_000, 100_000] {
        let inventory = synth::inventory(n, now);
        let plan = stagesweep::plan::plan(&inventory, &config, now);
        assert_eq!(plan.decisions.len(), n, "one decision per image");
        group.throughput(Throughput::Elements(n as u64));
        group.bench_with_input(BenchmarkId::from_parameter(n), &inventory, |b, inv| {
            b.iter(|| stagesweep::plan::plan(black_box(inv), &config, now));
        });
    }
    group.finish();
}

/// The cycle guard the planner's graph runs on every parent array (`inventory::cut_cycles`),
/// alone: what it adds to `plan()`.
fn cycle_guard(c: &mut Criterion) {
    let now = Utc
        .with_ymd_and_hms(2026, 11, 1, 12, 0, 0)
        .single()
        .expect("a fixed, valid time");
    let mut group = c.benchmark_group("cycle_guard");
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(3));
    let n = 100_000;
    let inventory = synth::inventory(n, now);
    let index: std::collections::HashMap<_, _> = inventory
        .images
        .iter()
        .enumerate()
        .map(|(i, im)| (im.id, i))
        .collect();
    let parent: Vec<Option<usize>> = inventory
        .images
        .iter()
        .map(|im| im.parent_id.and_then(|p| index.get(&p).copied()))
        .collect();
    group.throughput(Throughput::Elements(n as u64));
    group.bench_with_input(BenchmarkId::from_parameter(n), &parent, |b, parent| {
        b.iter(|| {
            let mut p = parent.clone();
            stagesweep::inventory::cut_cycles(black_box(&mut p))
        });
    });
    group.finish();
}

criterion_group!(benches, plan_at_scale, cycle_guard);
criterion_main!(benches);
