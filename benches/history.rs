//! Criterion benchmark of the history file: a crash-safe save (temp file, fsync, rename,
//! fsync of the directory) followed by a load, at 10k and 100k images, in the current layout
//! (`v2`: binary records) and the previous one (`v1`: columnar JSON), side by side; and the
//! CPU part alone (the bytes made and parsed back in memory).
//!
//! `cargo bench --bench history`. Under `cargo test --all-targets` criterion runs each case once.

use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use stagesweep::history::file::{Loaded, load, parse, save, to_bytes, to_bytes_v1, write};
use stagesweep::history::{History, Source};
use stagesweep::inventory::ImageId;

/// `n` records with distinct IDs, times and use counts, as an agent would write them.
fn history(n: usize) -> History {
    let mut h = History {
        engine_id: "BENCH:ENGINE:0001".to_owned(),
        checkpoint: Some(1_780_000_000_123_456_789),
        ..History::default()
    };
    for k in 0..n {
        let mut bytes = [0u8; 32];
        bytes[..8].copy_from_slice(&(k as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15).to_be_bytes());
        bytes[24..].copy_from_slice(&(k as u64).to_le_bytes());
        let at = 1_780_000_000 - i64::try_from(k).expect("small");
        h.used(ImageId::from_bytes(bytes), at, Source::Event);
        if k % 3 == 0 {
            h.used(ImageId::from_bytes(bytes), at + 3600, Source::Container);
        }
        // Use counts as the agent keeps them: 0 to 3 uses (decayed: long numbers).
        for u in 0..k % 4 {
            h.used_counted(
                ImageId::from_bytes(bytes),
                at - 7200 * i64::try_from(u).expect("small"),
            );
        }
    }
    h
}

/// A layout's writer: the history as the file's bytes.
type Encode = fn(&History) -> Vec<u8>;

fn save_then_load(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("a temp dir");
    let path = dir.path().join("history.json");
    let mut group = c.benchmark_group("history_save_then_load");
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(5));
    for n in [10_000usize, 100_000] {
        let h = history(n);
        save(&path, &h, false).expect("save");
        let Loaded::Read(back) = load(&path) else {
            panic!("the file just written reads back")
        };
        assert_eq!(back.images, h.images, "round trip");
        group.throughput(Throughput::Elements(n as u64));
        let layouts: [(&str, Encode); 2] = [("v1", to_bytes_v1), ("v2", to_bytes)];
        for (layout, bytes_of) in layouts {
            group.bench_with_input(BenchmarkId::new(layout, n), &h, |b, h| {
                b.iter(|| {
                    write(&path, &bytes_of(h)).expect("save");
                    match load(&path) {
                        Loaded::Read(back) => back.images.len(),
                        other => panic!("{other:?}"),
                    }
                });
            });
        }
    }
    group.finish();
}

/// The CPU part alone: the bytes made and parsed back in memory (no file, no fsync).
fn encode_then_parse(c: &mut Criterion) {
    let mut group = c.benchmark_group("history_encode_then_parse");
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(5));
    for n in [10_000usize, 100_000] {
        let h = history(n);
        group.throughput(Throughput::Elements(n as u64));
        let layouts: [(&str, Encode); 2] = [("v1", to_bytes_v1), ("v2", to_bytes)];
        for (layout, bytes_of) in layouts {
            group.bench_with_input(BenchmarkId::new(layout, n), &h, |b, h| {
                b.iter(|| parse(&bytes_of(h)).expect("readable").images.len());
            });
        }
    }
    group.finish();
}

criterion_group!(benches, save_then_load, encode_then_parse);
criterion_main!(benches);
