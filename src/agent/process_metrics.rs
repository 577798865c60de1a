//! The standard `process_*` metrics of Prometheus client libraries (the names and meanings of
//! the official Go client's process collector), read from `/proc/self` on every scrape:
//! resident and virtual memory, open and maximum file descriptors, start time, CPU time and
//! threads. `/proc` is read with the `procfs` crate, which parses `/proc/self/stat` correctly
//! (a command name may hold spaces and parentheses) and knows the page size and clock tick.
//!
//! Unprefixed on purpose: dashboards and alerts for any exporter use these names. Where
//! `/proc` cannot be read (not Linux, a restricted sandbox) a metric is left out, never faked.

use procfs::process::{LimitValue, Process};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Unit;

/// What one look at `/proc/self` found.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Sample {
    pub resident_bytes: Option<u64>,
    pub virtual_bytes: Option<u64>,
    pub open_fds: Option<u64>,
    pub max_fds: Option<u64>,
    pub start_time_seconds: Option<f64>,
    pub cpu_seconds: Option<f64>,
    pub threads: Option<u64>,
}

impl Sample {
    /// Read `/proc/self` now.
    #[must_use]
    pub fn now() -> Self {
        let Ok(me) = Process::myself() else {
            return Self::default();
        };
        let mut s = Self {
            open_fds: me.fd_count().ok().map(to_u64),
            max_fds: me
                .limits()
                .ok()
                .and_then(|l| match l.max_open_files.soft_limit {
                    LimitValue::Value(n) => Some(n),
                    LimitValue::Unlimited => None,
                }),
            ..Self::default()
        };
        if let Ok(stat) = me.stat() {
            let ticks = procfs::ticks_per_second();
            s.resident_bytes = Some(stat.rss.saturating_mul(procfs::page_size()));
            s.virtual_bytes = Some(stat.vsize);
            s.threads = u64::try_from(stat.num_threads).ok();
            s.cpu_seconds = Some(ratio(stat.utime + stat.stime, ticks));
            s.start_time_seconds = procfs::boot_time_secs()
                .ok()
                .map(|boot| to_f64(boot) + ratio(stat.starttime, ticks));
        }
        s
    }
}

fn to_u64(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

#[allow(clippy::cast_precision_loss)] // Seconds and tick counts far below 2^53.
fn to_f64(n: u64) -> f64 {
    n as f64
}

fn ratio(ticks: u64, per_second: u64) -> f64 {
    to_f64(ticks) / to_f64(per_second.max(1))
}

/// The collector registered in the agent's registry.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessCollector;

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let s = Sample::now();
        let gauges: [(&str, &str, Option<Unit>, Option<u64>); 5] = [
            (
                "process_resident_memory",
                "Resident memory size in bytes",
                Some(Unit::Bytes),
                s.resident_bytes,
            ),
            (
                "process_virtual_memory",
                "Virtual memory size in bytes",
                Some(Unit::Bytes),
                s.virtual_bytes,
            ),
            (
                "process_open_fds",
                "Number of open file descriptors",
                None,
                s.open_fds,
            ),
            (
                "process_max_fds",
                "Maximum number of open file descriptors",
                None,
                s.max_fds,
            ),
            (
                "process_threads",
                "Number of OS threads in the process",
                None,
                s.threads,
            ),
        ];
        for (name, help, unit, value) in gauges {
            if let Some(v) = value {
                let m = encoder.encode_descriptor(name, help, unit.as_ref(), MetricType::Gauge)?;
                ConstGauge::new(i64::try_from(v).unwrap_or(i64::MAX)).encode(m)?;
            }
        }
        if let Some(start) = s.start_time_seconds {
            let help = "Start time of the process since the Unix epoch in seconds";
            let m = encoder.encode_descriptor(
                "process_start_time",
                help,
                Some(&Unit::Seconds),
                MetricType::Gauge,
            )?;
            ConstGauge::new(start).encode(m)?;
        }
        if let Some(cpu) = s.cpu_seconds {
            let help = "Total user and system CPU time spent in seconds";
            let m = encoder.encode_descriptor(
                "process_cpu",
                help,
                Some(&Unit::Seconds),
                MetricType::Counter,
            )?;
            ConstCounter::new(cpu).encode(m)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_seen_as_it_is() {
        let s = Sample::now();
        let rss = s.resident_bytes.expect("rss");
        assert!(rss > 1_000_000, "a test binary holds more than 1 MB: {rss}");
        assert!(s.virtual_bytes.expect("vsize") >= rss);
        // Other tests run in parallel threads and open files: compare loosely.
        let open = s.open_fds.expect("fds");
        assert!(open >= 3, "at least stdin, stdout and stderr: {open}");
        assert!(s.max_fds.expect("limit") >= open);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("after 1970")
            .as_secs_f64();
        let start = s.start_time_seconds.expect("start time");
        assert!(
            start <= now + 1.0 && start > now - 3600.0,
            "{start} vs {now}"
        );
        assert!(s.threads.expect("threads") >= 1);
        assert!(s.cpu_seconds.expect("cpu") >= 0.0);
    }
}
