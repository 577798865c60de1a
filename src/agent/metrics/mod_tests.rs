//! The metrics from plain summaries: names, values, absent timestamps, pre-created labels and
//! the naming conventions of the module header, in both text formats.

use super::*;

fn summary() -> Summary {
    let mut s = Summary {
        deleted: 3,
        skipped: 1,
        failed: 1,
        duration_secs: 0.5,
        ..Summary::default()
    };
    s.deleted_by_policy.insert("builder".into(), 3);
    s.bytes_by_policy.insert("builder".into(), 1000);
    s.matched_by_policy.insert("builder".into(), 5);
    s.kept_by_reason.insert("in_use".into(), 2);
    s
}

fn at() -> DateTime<Utc> {
    "2026-01-01T00:00:00Z".parse().expect("ts")
}

#[test]
fn summary_feeds_every_family_with_stagesweep_prefix() {
    let m = Metrics::new();
    m.record_summary(&summary(), at());
    m.record_summary(&summary(), at());
    m.record_failure(1.0);
    m.tick_skipped(SkipReason::PassRunning);
    m.config_reload(false);
    m.set_next_pass(Some(at()));
    m.set_docker_up(true);
    let text = m.encode();
    for line in [
        "stagesweep_passes_total{result=\"partial\"} 2",
        "stagesweep_passes_total{result=\"failure\"} 1",
        "stagesweep_images_deleted_total{policy=\"builder\"} 6",
        "stagesweep_reclaimed_bytes_total{policy=\"builder\"} 2000",
        "stagesweep_images_kept{reason=\"in_use\"} 2",
        "stagesweep_images_skipped_total 2",
        "stagesweep_deletions_failed_total 2",
        "stagesweep_pass_duration_seconds_count 3",
        "stagesweep_last_pass_success_timestamp_seconds 1767225600.0",
        "stagesweep_next_pass_timestamp_seconds 1767225600.0",
        "stagesweep_images_matched{policy=\"builder\"} 5",
        "stagesweep_ticks_skipped_total{reason=\"pass_running\"} 1",
        "stagesweep_config_reloads_total{result=\"failure\"} 1",
        "stagesweep_docker_up 1",
        "stagesweep_build_info{version=\"",
        "process_resident_memory_bytes ",
        "process_start_time_seconds ",
    ] {
        assert!(text.contains(line), "missing {line:?} in\n{text}");
    }
    assert!(text.ends_with("# EOF\n"));
}

#[test]
fn kept_is_the_last_pass_not_a_sum() {
    let m = Metrics::new();
    m.record_summary(&summary(), at());
    let mut later = Summary::default();
    later.kept_by_reason.insert("protected_label".into(), 1);
    m.record_summary(&later, at());
    let text = m.encode();
    assert!(text.contains("stagesweep_images_kept{reason=\"protected_label\"} 1"));
    assert!(!text.contains("reason=\"in_use\""), "{text}");
}

#[test]
fn timestamps_are_absent_until_known_and_alert_labels_exist_from_the_start() {
    let m = Metrics::new();
    let text = m.encode_as(Format::Text);
    let samples: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
    for absent in [
        "stagesweep_last_pass_success_timestamp_seconds",
        "stagesweep_next_pass_timestamp_seconds",
    ] {
        assert!(
            !samples.iter().any(|l| l.starts_with(absent)),
            "{absent} has no value before the first pass:\n{text}"
        );
    }
    for zero in [
        "stagesweep_passes_total{result=\"success\"} 0",
        "stagesweep_passes_total{result=\"partial\"} 0",
        "stagesweep_passes_total{result=\"failure\"} 0",
        "stagesweep_ticks_skipped_total{reason=\"pass_running\"} 0",
        "stagesweep_ticks_skipped_total{reason=\"docker_unreachable\"} 0",
        "stagesweep_config_reloads_total{result=\"failure\"} 0",
        "stagesweep_docker_up 0",
    ] {
        assert!(samples.contains(&zero), "missing {zero:?} in\n{text}");
    }
    m.set_next_pass(Some(at()));
    m.set_next_pass(None);
    assert!(
        !m.encode()
            .contains("stagesweep_next_pass_timestamp_seconds 1")
    );
}

/// `# TYPE` lines of the 0.0.4 text: (name, type).
fn families(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_once(' '))
        .map(|(n, t)| (n.to_owned(), t.to_owned()))
        .collect()
}

#[test]
fn names_follow_the_conventions() {
    let m = Metrics::new();
    m.record_summary(&summary(), at());
    let text = m.encode_as(Format::Text);
    let families = families(&text);
    assert!(families.len() >= 20, "{families:?}");
    for (name, kind) in &families {
        assert!(
            name.starts_with("stagesweep_") || name.starts_with("process_"),
            "{name}: prefix"
        );
        assert!(text.contains(&format!("# HELP {name} ")), "{name}: no HELP");
        assert_eq!(
            kind == "counter",
            name.ends_with("_total"),
            "{name}: counters and only counters end in _total"
        );
        let base = name.trim_end_matches("_total");
        for unit in ["bytes", "seconds"] {
            if base.contains(unit) {
                assert!(base.ends_with(unit), "{name}: the unit {unit} goes last");
            }
        }
    }
}
#[test]
fn build_waits_feed_the_deferral_metrics() {
    let m = Metrics::new();
    let at: DateTime<Utc> = "2026-01-01T00:00:00Z".parse().expect("ts");
    let resumed = Summary {
        build_deferrals: 3,
        build_wait_secs: Some(30.0),
        ..Summary::default()
    };
    let skipped = Summary {
        build_deferrals: 180,
        build_wait_secs: Some(1800.0),
        deferred: 4,
        ..Summary::default()
    };
    let clear = Summary {
        build_wait_secs: Some(0.0),
        ..Summary::default()
    };
    for s in [&resumed, &skipped, &clear, &Summary::default()] {
        m.record_summary(s, at);
    }
    let text = m.encode();
    for line in [
        "stagesweep_deferred_passes_total{result=\"resumed\"} 1",
        "stagesweep_deferred_passes_total{result=\"skipped\"} 1",
        "stagesweep_build_lock_wait_seconds_count 3",
        "stagesweep_build_lock_wait_seconds_sum 1830.0",
        "stagesweep_build_lock_wait_seconds_bucket{le=\"1.0\"} 1",
        "stagesweep_build_lock_wait_seconds_bucket{le=\"32.0\"} 2",
    ] {
        assert!(text.contains(line), "missing {line:?} in\n{text}");
    }
}

#[test]
fn the_disk_measurement_feeds_its_gauges() {
    let m = Metrics::new();
    let at: DateTime<Utc> = "2026-01-01T00:00:00Z".parse().expect("ts");
    let measured = Summary {
        disk: Some((0.875, 0.85)),
        ..Summary::default()
    };
    m.record_summary(&measured, at);
    let text = m.encode();
    for line in [
        "stagesweep_disk_used_ratio 0.875",
        "stagesweep_disk_high_ratio 0.85",
        "stagesweep_disk_pressure_stuck 0",
    ] {
        assert!(text.contains(line), "missing {line:?} in\n{text}");
    }
    // A pass that could not relieve the disk says so until one that could.
    let stuck = Summary {
        disk_pressure_stuck: true,
        ..measured.clone()
    };
    m.record_summary(&stuck, at);
    assert!(m.encode().contains("stagesweep_disk_pressure_stuck 1\n"));
    m.record_summary(&measured, at);
    assert!(m.encode().contains("stagesweep_disk_pressure_stuck 0\n"));
}

#[test]
fn the_build_cache_feeds_its_gauge_and_counter() {
    let m = Metrics::new();
    let at: DateTime<Utc> = "2026-01-01T00:00:00Z".parse().expect("ts");
    let mut s = Summary::default();
    s.build_cache.total_bytes = 4_200;
    s.build_cache
        .bytes_by_rule
        .insert("stale-cache".into(), 700);
    m.record_summary(&s, at);
    m.record_summary(&s, at);
    let text = m.encode();
    for line in [
        "stagesweep_build_cache_bytes 4200",
        "stagesweep_build_cache_reclaimed_bytes_total{rule=\"stale-cache\"} 1400",
    ] {
        assert!(text.contains(line), "missing {line:?} in\n{text}");
    }
}
