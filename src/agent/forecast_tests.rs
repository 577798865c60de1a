use super::*;
use crate::config::{ForecastConfig, Measure, Watermarks};

const CAP: u64 = 1_000_000;

fn disk(inodes: Option<Watermarks>) -> DiskConfig {
    DiskConfig {
        space: Watermarks { high: 85, low: 80 },
        inodes,
        path: None,
        containerd_root: None,
        measure: Measure::Statvfs,
        check_every: Some(Duration::from_secs(10)),
        forecast: ForecastConfig::default(),
    }
}

fn usage(used: u64) -> DiskUsage {
    DiskUsage {
        source: "/data".into(),
        capacity_bytes: CAP,
        available_bytes: CAP - used,
        inodes: None,
    }
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// Feed `(at seconds, used bytes)` and return the last forecast.
fn feed(f: &mut Forecaster, d: &DiskConfig, samples: &[(u64, u64)]) -> Forecast {
    let mut last = Forecast::default();
    for &(at, used) in samples {
        last = f.observe(secs(at), &usage(used), d);
    }
    last
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-6 * b.abs().max(1.0)
}

#[test]
fn a_steady_fill_gives_its_rate_and_the_time_until_high() {
    let d = disk(None);
    let mut f = Forecaster::default();
    // 1000 B/s from 500 kB, a check every 10 s.
    let steady: Vec<(u64, u64)> = (0..5).map(|k| (k * 10, 500_000 + k * 10_000)).collect();
    let out = feed(&mut f, &d, &steady).space.expect("a fit");
    assert!(close(out.rate_per_sec, 1000.0), "{out:?}");
    // 540 kB used at the last sample, high at 850 kB: 310 s.
    assert_eq!(out.eta, Some(secs(310)));
    assert!(close(out.used_ratio, 0.54));
}

#[test]
fn fewer_than_three_samples_give_no_fit() {
    let d = disk(None);
    let mut f = Forecaster::default();
    assert_eq!(feed(&mut f, &d, &[(0, 1000), (10, 2000)]).space, None);
    assert!(feed(&mut f, &d, &[(20, 3000)]).space.is_some());
}

#[test]
fn a_flat_or_falling_disk_has_a_rate_but_no_eta() {
    let d = disk(None);
    let flat = feed(
        &mut Forecaster::default(),
        &d,
        &[(0, 700_000), (10, 700_000), (20, 700_000)],
    );
    let flat = flat.space.expect("a fit");
    assert!(
        close(flat.rate_per_sec, 0.0) && flat.eta.is_none(),
        "{flat:?}"
    );
    // Falling by less than a drop each time (1 % of capacity): a slow drain, not a prune.
    let drain = feed(
        &mut Forecaster::default(),
        &d,
        &[(0, 700_000), (10, 695_000), (20, 690_000)],
    );
    let drain = drain.space.expect("a fit");
    assert!(
        close(drain.rate_per_sec, -500.0) && drain.eta.is_none(),
        "{drain:?}"
    );
}

#[test]
fn a_drop_starts_the_window_over_and_the_fit_uses_only_what_follows() {
    let d = disk(None);
    let mut f = Forecaster::default();
    feed(&mut f, &d, &[(0, 800_000), (10, 810_000), (20, 820_000)]);
    // A prune frees 200 kB: no fit until three samples since.
    let after = feed(&mut f, &d, &[(30, 620_000), (40, 640_000)]);
    assert_eq!(after.space, None, "two samples since the drop");
    let out = feed(&mut f, &d, &[(50, 660_000)]).space.expect("a fit");
    // Only the new slope (2000 B/s), not the old one nor the fall across the drop.
    assert!(close(out.rate_per_sec, 2000.0), "{out:?}");
    assert_eq!(out.eta, Some(secs(95)), "(850 − 660) kB at 2 kB/s");
}

#[test]
fn small_decreases_are_noise_that_stays_in_the_fit() {
    let d = disk(None);
    let mut f = Forecaster::default();
    // Up 1000 B/s with ±3 kB of noise (each dip well under 1 % of capacity).
    let noise = [0i64, 3000, -3000, 2000, -2000, 3000, -3000, 0];
    let samples: Vec<(u64, u64)> = noise
        .iter()
        .zip(0u64..)
        .map(|(n, k)| {
            let used = 500_000 + k * 10_000;
            (k * 10, used.checked_add_signed(*n).expect("positive"))
        })
        .collect();
    let out = feed(&mut f, &d, &samples).space.expect("a fit");
    assert!((out.rate_per_sec - 1000.0).abs() < 150.0, "{out:?}");
}

#[test]
fn the_window_forgets_old_samples_and_holds_at_most_max_samples() {
    let mut d = disk(None);
    d.forecast.window = secs(30);
    let mut f = Forecaster::default();
    // Fast at first (5 kB/s), then slow (1 kB/s): after 30 s only the slow part counts.
    feed(&mut f, &d, &[(0, 100_000), (10, 150_000), (20, 200_000)]);
    let out = feed(
        &mut f,
        &d,
        &[(30, 210_000), (40, 220_000), (50, 230_000), (60, 240_000)],
    );
    let out = out.space.expect("a fit");
    assert!(close(out.rate_per_sec, 1000.0), "{out:?}");
    d.forecast.window = secs(1_000_000);
    let mut f = Forecaster::default();
    for k in 0..2000u64 {
        f.observe(secs(k), &usage(k), &d);
    }
    assert_eq!(f.space.samples.len(), MAX_SAMPLES);
    assert_eq!(f.space.samples.front().map(|s| s.0), Some(1488.0));
}

#[test]
fn another_capacity_is_another_filesystem_and_starts_over() {
    let d = disk(None);
    let mut f = Forecaster::default();
    feed(&mut f, &d, &[(0, 100_000), (10, 110_000), (20, 120_000)]);
    let other = DiskUsage {
        capacity_bytes: 2 * CAP,
        available_bytes: 2 * CAP - 130_000,
        ..usage(0)
    };
    assert_eq!(f.observe(secs(30), &other, &d).space, None);
}

#[test]
fn inodes_get_an_eta_only_with_their_own_watermarks() {
    let at = |used: u64| DiskUsage {
        inodes: Some((10_000, 10_000 - used)),
        ..usage(500_000)
    };
    let mut bare = Forecaster::default();
    let mut marked = Forecaster::default();
    let d = disk(None);
    let dm = disk(Some(Watermarks { high: 90, low: 70 }));
    let (mut a, mut b) = (Forecast::default(), Forecast::default());
    for k in 0..4 {
        a = bare.observe(secs(k * 10), &at(5000 + k * 100), &d);
        b = marked.observe(secs(k * 10), &at(5000 + k * 100), &dm);
    }
    let a = a.inodes.expect("inodes counted");
    assert!(close(a.rate_per_sec, 10.0) && a.eta.is_none(), "{a:?}");
    // 5300 used, high at 9000: 370 s at 10 inodes/s.
    assert_eq!(b.inodes.expect("a fit").eta, Some(secs(370)));
    // Space does not move: no space ETA.
    assert_eq!(b.space.expect("a fit").eta, None);
}

#[test]
fn a_pass_is_due_when_high_comes_before_the_next_check_and_usage_is_over_low() {
    let d = disk(None);
    let outlook = |used_ratio: f64, eta: u64| Forecast {
        space: Some(Outlook {
            resource: Resource::Space,
            rate_per_sec: 1000.0,
            eta: Some(secs(eta)),
            used_ratio,
        }),
        inodes: None,
    };
    let due = outlook(0.834, 40).due(secs(60), &d).expect("due");
    assert_eq!(
        due,
        Due {
            resource: Resource::Space,
            eta: secs(40),
            high: 83
        }
    );
    assert_eq!(due.reason(), "forecast: space reaches high in 40s");
    assert_eq!(
        outlook(0.834, 60).due(secs(60), &d),
        None,
        "the next check comes first"
    );
    assert_eq!(
        outlook(0.809, 40).due(secs(60), &d),
        None,
        "not over low + 1 %"
    );
    assert_eq!(
        outlook(0.86, 0).due(secs(60), &d),
        None,
        "at high: the usual wake"
    );
    let none = Forecast {
        space: Some(Outlook {
            eta: None,
            ..outlook(0.834, 0).space.expect("set")
        }),
        inodes: None,
    };
    assert_eq!(none.due(secs(60), &d), None, "not filling");
    // Both resources: the one that comes first.
    let dm = disk(Some(Watermarks { high: 90, low: 70 }));
    let both = Forecast {
        inodes: Some(Outlook {
            resource: Resource::Inodes,
            rate_per_sec: 5.0,
            eta: Some(secs(20)),
            used_ratio: 0.88,
        }),
        ..outlook(0.834, 40)
    };
    let first = both.due(secs(60), &dm).expect("due");
    assert_eq!((first.resource, first.high), (Resource::Inodes, 88));
}
