//! How durations, ages and byte counts are written for people, shared by config summaries,
//! reasons and reports.

use bytesize::ByteSize;

/// An age, rounded to one unit: `45s`, `12m`, `49h`, `9d`.
#[must_use]
pub fn fmt_age(secs: u64) -> String {
    match secs {
        0..100 => format!("{secs}s"),
        100..6000 => format!("{}m", secs / 60),
        6000..360_000 => format!("{}h", secs / 3600),
        _ => format!("{}d", secs / 86400),
    }
}

/// A configured duration as people write it: `90s`, `15m`, `24h`, `36h`, `7d`.
#[must_use]
pub fn fmt_duration(secs: u64) -> String {
    match secs {
        s if s > 86_400 && s % 86_400 == 0 => format!("{}d", s / 86_400),
        s if s >= 3600 && s % 3600 == 0 => format!("{}h", s / 3600),
        s if s >= 60 && s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

/// A byte count in SI units, as `docker images` shows sizes: `1.4 GB`, `300 B`.
#[must_use]
pub fn fmt_bytes(n: u64) -> String {
    ByteSize(n).display().si().to_string()
}
