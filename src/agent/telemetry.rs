//! What the agent tells the outside world: readiness for `/healthz` (docker reachable, last
//! pass did not fail), liveness for `/livez` (the loop is still turning: its heartbeat is
//! recent), metrics, the systemd `STATUS=` line, and the log lines on engine state changes
//! (once per change, not per retry).
//!
//! Shared (behind an `Arc`) by the loop, the reload handler and the HTTP listener.

use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use sd_notify::NotifyState;

use super::metrics::Metrics;
use crate::execute::Summary;
use crate::units::fmt_bytes;

/// What the agent last knew about the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
enum EngineState {
    /// No answer yet (start-up).
    Connecting,
    Reachable,
    Unreachable(String),
}

#[derive(Debug)]
struct State {
    engine: EngineState,
    /// The last pass: its finish time and summary line, or the error that failed it whole.
    last_pass: Option<(DateTime<Utc>, Result<String, String>)>,
    next_pass: Option<DateTime<Utc>>,
    /// Whether the history follows the engine's events, since when; `None` without one.
    history: Option<(bool, DateTime<Utc>)>,
}

/// `/livez` fails when the loop has not beaten its heartbeat for this long: three times the
/// longest regular wait (the between-passes probe every 30s; busy waits beat every 10s).
pub const STALLED_AFTER: Duration = Duration::from_secs(90);

/// Health, metrics and status of one agent.
pub struct Telemetry {
    pub metrics: Metrics,
    state: Mutex<State>,
    /// When the loop last showed it was turning (tokio time, so tests control it).
    heartbeat: Mutex<tokio::time::Instant>,
}

impl Default for Telemetry {
    fn default() -> Self {
        Self::new()
    }
}

impl Telemetry {
    #[must_use]
    pub fn new() -> Self {
        Self {
            metrics: Metrics::new(),
            state: Mutex::new(State {
                engine: EngineState::Connecting,
                last_pass: None,
                next_pass: None,
                history: None,
            }),
            heartbeat: Mutex::new(tokio::time::Instant::now()),
        }
    }

    /// The loop is turning.
    pub fn beat(&self) {
        *self
            .heartbeat
            .lock()
            .expect("heartbeat lock is never poisoned") = tokio::time::Instant::now();
    }

    /// `Ok` while the loop's heartbeat is younger than [`STALLED_AFTER`]: whatever docker or
    /// the last pass did, a restart would not help then. Otherwise a one-line reason.
    pub fn liveness(&self) -> Result<(), String> {
        let last = *self
            .heartbeat
            .lock()
            .expect("heartbeat lock is never poisoned");
        let silent = last.elapsed();
        if silent > STALLED_AFTER {
            Err(format!(
                "agent loop stalled: no heartbeat for {}s",
                silent.as_secs()
            ))
        } else {
            Ok(())
        }
    }

    /// The engine answered. Logs only when this changes the state.
    pub fn engine_reachable(&self, engine: &str) {
        self.metrics.set_docker_up(true);
        let previous = self.update(|s| std::mem::replace(&mut s.engine, EngineState::Reachable));
        match previous {
            EngineState::Reachable => {}
            EngineState::Connecting => tracing::info!(engine, "connected to docker"),
            EngineState::Unreachable(_) => tracing::info!(engine, "docker is reachable again"),
        }
    }

    /// The engine did not answer. Logs only when this changes the state (not on every retry).
    pub fn engine_unreachable(&self, error: &str) {
        self.metrics.set_docker_up(false);
        let new = EngineState::Unreachable(error.to_owned());
        let previous = self.update(|s| std::mem::replace(&mut s.engine, new));
        if matches!(previous, EngineState::Unreachable(_)) {
            tracing::debug!(error, "docker still unreachable");
        } else {
            tracing::warn!(
                error,
                "docker is unreachable; retrying with backoff (capped at 60s)"
            );
        }
    }

    /// A pass finished with a summary (possibly with per-image failures).
    pub fn pass_finished(&self, summary: &Summary, finished: DateTime<Utc>) {
        self.metrics.record_summary(summary, finished);
        let line = summary_line(summary);
        self.update(|s| s.last_pass = Some((finished, Ok(line))));
    }

    /// A pass failed as a whole.
    pub fn pass_failed(&self, error: &str, duration_secs: f64, finished: DateTime<Utc>) {
        self.metrics.record_failure(duration_secs);
        self.update(|s| s.last_pass = Some((finished, Err(error.to_owned()))));
    }

    /// The history started (`true`) or stopped (`false`) following the engine's events at
    /// `at`. Logs only when this changes.
    pub fn history_caught_up(&self, caught_up: bool, at: DateTime<Utc>) {
        let previous = self.update(|s| {
            let previous = s.history;
            if previous.is_none_or(|(was, _)| was != caught_up) {
                s.history = Some((caught_up, at));
            }
            previous
        });
        let since = self.update(|s| s.history.map(|(_, since)| since));
        self.metrics
            .set_history(caught_up, since.filter(|_| !caught_up));
        if previous.is_some_and(|(was, _)| was == caught_up) {
            return;
        }
        if caught_up {
            tracing::info!("the history follows the engine's events");
        } else if previous.is_some() {
            tracing::warn!(
                "the history no longer follows the engine's events; passes wait for it (history.catch_up), then count a gap"
            );
        }
    }

    /// `/healthz`'s detail besides `ok`: whether the history follows the engine's events,
    /// and since when.
    #[must_use]
    pub fn health_detail(&self) -> Option<String> {
        let s = self.state.lock().expect("telemetry lock is never poisoned");
        let (caught_up, since) = s.history?;
        let since = stamp(since);
        Some(if caught_up {
            format!("history: follows the engine's events since {since}")
        } else {
            format!("history: behind the engine's events since {since}")
        })
    }

    /// The next scheduled pass (after jitter), if any.
    pub fn next_pass(&self, at: Option<DateTime<Utc>>) {
        self.metrics.set_next_pass(at);
        self.update(|s| s.next_pass = at);
    }

    /// `Ok` when the engine is reachable and the last pass did not fail as a whole;
    /// otherwise a one-line reason.
    pub fn health(&self) -> Result<(), String> {
        let s = self.state.lock().expect("telemetry lock is never poisoned");
        match &s.engine {
            EngineState::Connecting => return Err("connecting to docker".into()),
            EngineState::Unreachable(e) => return Err(format!("docker unreachable: {e}")),
            EngineState::Reachable => {}
        }
        match &s.last_pass {
            Some((_, Err(e))) => Err(format!("last pass failed: {e}")),
            _ => Ok(()),
        }
    }

    /// The one-line status for systemd's `STATUS=`.
    #[must_use]
    pub fn status_line(&self) -> String {
        let s = self.state.lock().expect("telemetry lock is never poisoned");
        status_of(&s)
    }

    fn update<T>(&self, change: impl FnOnce(&mut State) -> T) -> T {
        let (out, status) = {
            let mut s = self.state.lock().expect("telemetry lock is never poisoned");
            let out = change(&mut s);
            (out, status_of(&s))
        };
        super::notify::send(&[NotifyState::Status(&status)]);
        out
    }
}

fn status_of(s: &State) -> String {
    let mut parts = Vec::new();
    match &s.engine {
        EngineState::Connecting => parts.push("connecting to docker".to_owned()),
        EngineState::Unreachable(e) => parts.push(format!("docker unreachable ({e}), retrying")),
        EngineState::Reachable => {}
    }
    match &s.last_pass {
        None => parts.push("no pass yet".to_owned()),
        Some((at, Ok(line))) => parts.push(format!("last pass {}: {line}", stamp(*at))),
        Some((at, Err(e))) => parts.push(format!("last pass {} failed: {e}", stamp(*at))),
    }
    if let Some(next) = s.next_pass {
        parts.push(format!("next {}", stamp(next)));
    }
    parts.join("; ")
}

fn stamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// `deleted 5 (1.2 GB), kept 3, skipped 0, failed 0 in 0.4s` — bytes in the same units as the
/// report's summary line.
#[must_use]
pub fn summary_line(s: &Summary) -> String {
    if s.deferred > 0 {
        return format!(
            "deferred {} deletions (a build is in progress), kept {} in {:.1}s",
            s.deferred, s.kept, s.duration_secs
        );
    }
    let c = &s.build_cache;
    let cache = if c.records > 0 || c.deleted > 0 {
        format!(
            ", build cache deleted {} ({}) of {}",
            c.deleted,
            fmt_bytes(c.reclaimed_bytes),
            c.records
        )
    } else {
        String::new()
    };
    format!(
        "deleted {} ({}), kept {}, skipped {}, failed {}{cache} in {:.1}s",
        s.deleted,
        fmt_bytes(s.reclaimed_bytes),
        s.kept,
        s.skipped,
        s.failed,
        s.duration_secs
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_follows_engine_and_last_pass() {
        let t = Telemetry::new();
        let at: DateTime<Utc> = "2026-01-01T00:00:00Z".parse().expect("ts");
        assert_eq!(t.health(), Err("connecting to docker".into()));
        t.engine_reachable("unix:///x.sock");
        assert_eq!(t.health(), Ok(()));
        t.pass_failed("cannot list images", 0.1, at);
        assert_eq!(
            t.health(),
            Err("last pass failed: cannot list images".into())
        );
        t.engine_unreachable("connection refused");
        assert_eq!(
            t.health(),
            Err("docker unreachable: connection refused".into())
        );
        t.engine_reachable("unix:///x.sock");
        t.pass_finished(&Summary::default(), at);
        assert_eq!(t.health(), Ok(()));
    }

    #[tokio::test(start_paused = true)]
    async fn liveness_ignores_docker_and_failed_passes_but_not_a_stalled_loop() {
        let t = Telemetry::new();
        assert_eq!(t.liveness(), Ok(()), "alive at start");
        t.engine_unreachable("connection refused");
        t.pass_failed(
            "cannot list images",
            0.1,
            "2026-01-01T00:00:00Z".parse().expect("ts"),
        );
        assert_eq!(t.liveness(), Ok(()), "readiness fails, liveness does not");
        assert!(t.health().is_err());
        tokio::time::advance(Duration::from_secs(89)).await;
        assert_eq!(t.liveness(), Ok(()));
        tokio::time::advance(Duration::from_secs(2)).await;
        assert_eq!(
            t.liveness(),
            Err("agent loop stalled: no heartbeat for 91s".into())
        );
        t.beat();
        assert_eq!(t.liveness(), Ok(()));
    }

    #[test]
    fn status_line_names_last_and_next_pass() {
        let t = Telemetry::new();
        let at: DateTime<Utc> = "2026-01-01T00:00:00Z".parse().expect("ts");
        t.engine_reachable("x");
        let s = Summary {
            deleted: 5,
            reclaimed_bytes: 1_500_000,
            kept: 3,
            duration_secs: 0.25,
            ..Summary::default()
        };
        t.pass_finished(&s, at);
        t.next_pass(Some(at + chrono::Duration::hours(1)));
        assert_eq!(
            t.status_line(),
            "last pass 2026-01-01T00:00:00Z: deleted 5 (1.5 MB), kept 3, skipped 0, failed 0 in 0.2s; next 2026-01-01T01:00:00Z"
        );
    }
}
