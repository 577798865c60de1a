//! The agent's loop: wait for a tick, make sure the engine answers, run one pass, repeat.
//!
//! Passes never overlap: ticks that fire while a pass runs (or while docker is unreachable)
//! are skipped and counted. Modelled on mini-redis: [`Agent::run`] takes the shutdown
//! future from its caller and `select!`s on work and shutdown. Uses `tokio::time` and an
//! injected [`Clock`] only, so tests drive it with paused time.

use std::future::{Future, pending};
use std::sync::Arc;
use std::time::Duration;

use rand::SeedableRng;
use rand::rngs::StdRng;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::backend::Backend;
use super::clock::{Backoff, Clock, sleep_until_wall};
use super::early_passes::EarlyPasses;
use super::metric_labels::SkipReason;
use super::telemetry::Telemetry;
use super::ticks::{ScheduleKey, TickerFactory, Ticks, busy};
use super::trigger::{Forecasts, Trigger};
use crate::config::Config;
use crate::pass::host_hint::host_needs;

/// How often the engine is pinged between passes, so health follows it.
const PROBE_EVERY: Duration = Duration::from_secs(30);

/// How [`Agent::run`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopped {
    /// In-flight work finished within `shutdown_timeout`.
    Clean,
    /// `shutdown_timeout` ran out; in-flight work was abandoned.
    TimedOut,
}

/// The scheduling loop.
pub struct Agent<B: Backend, K: Clock> {
    backend: B,
    clock: K,
    config: watch::Receiver<Arc<Config>>,
    reload_open: bool,
    tickers: TickerFactory,
    telemetry: Arc<Telemetry>,
    ticks: Ticks,
    /// What the ticks were planned from; a reload that leaves it equal keeps them.
    schedule: ScheduleKey,
    backoff: Backoff,
    probe_every: Duration,
    passes: u64,
    /// Notified when a pass should run early (the disk is over `high`).
    wake: Arc<tokio::sync::Notify>,
    /// Early passes back off while pressure persists with nothing to evict.
    early: EarlyPasses,
    /// The first finished pass says what the host needs (once per agent run).
    host_checked: bool,
    /// A forecast pass the disk checker asks for with its wake.
    forecasts: Arc<Forecasts>,
}

impl<B: Backend, K: Clock> Agent<B, K> {
    /// A loop over `backend`, reading the configuration from `config` at every pass.
    pub fn new(
        backend: B,
        clock: K,
        config: watch::Receiver<Arc<Config>>,
        tickers: TickerFactory,
        telemetry: Arc<Telemetry>,
    ) -> Self {
        let current = Arc::clone(&config.borrow());
        let ticks = Ticks::new(
            tickers(&current),
            current.agent.jitter,
            StdRng::from_os_rng(),
        );
        Self {
            backend,
            clock,
            config,
            reload_open: true,
            tickers,
            telemetry,
            ticks,
            schedule: ScheduleKey::of(&current),
            backoff: Backoff::default(),
            probe_every: PROBE_EVERY,
            passes: 0,
            wake: Arc::new(tokio::sync::Notify::new()),
            early: EarlyPasses::default(),
            host_checked: false,
            forecasts: Arc::default(),
        }
    }

    /// Run a pass early whenever `wake` is notified (the disk checker does).
    #[must_use]
    pub fn with_wake(mut self, wake: Arc<tokio::sync::Notify>) -> Self {
        self.wake = wake;
        self
    }

    /// Read why a wake asks for a pass (a forecast) from `forecasts`, shared with the checker.
    #[must_use]
    pub fn with_forecasts(mut self, forecasts: Arc<Forecasts>) -> Self {
        self.forecasts = forecasts;
        self
    }

    /// Draw jitter from a seeded generator (reproducible tests).
    #[must_use]
    pub fn with_seed(mut self, seed: u64) -> Self {
        let current = Arc::clone(&self.config.borrow());
        self.ticks = Ticks::new(
            (self.tickers)(&current),
            current.agent.jitter,
            StdRng::seed_from_u64(seed),
        );
        self
    }

    /// Run until `shutdown` completes; then start no new deletions and give in-flight ones
    /// `agent.shutdown_timeout` (read at that moment) to finish.
    pub async fn run(mut self, shutdown: impl Future<Output = ()>) -> Stopped {
        let config = self.config.clone();
        let stop = CancellationToken::new();
        let work = self.work(&stop);
        tokio::pin!(work, shutdown);
        tokio::select! {
            () = &mut work => return Stopped::Clean,
            () = &mut shutdown => {}
        }
        let limit = config.borrow().agent.shutdown_timeout;
        tracing::info!(timeout = ?limit, "stop requested: no new deletions will start");
        stop.cancel();
        if tokio::time::timeout(limit, work).await.is_ok() {
            Stopped::Clean
        } else {
            tracing::warn!(timeout = ?limit, "in-flight work did not finish within the shutdown timeout; abandoning it");
            Stopped::TimedOut
        }
    }

    async fn work(&mut self, stop: &CancellationToken) {
        let mut due = self
            .current_config()
            .agent
            .run_on_start
            .then_some(Trigger::Start);
        self.ticks.plan_after(self.clock.now());
        self.publish_next();
        if due.is_none() {
            // Check the engine at start-up so health and logs are right before the first tick.
            match self.ensure_reachable(stop).await {
                None => return,
                Some(recovered) => due = recovered.then_some(Trigger::Recovered),
            }
        }
        loop {
            let trigger = match due.take() {
                Some(t) => t,
                None => match self.idle(stop).await {
                    Some(t) => t,
                    None if stop.is_cancelled() => return,
                    None => continue,
                },
            };
            if self.ensure_reachable(stop).await.is_none() {
                return;
            }
            let Some(unreachable) = self.one_pass(trigger, stop).await else {
                return;
            };
            if unreachable {
                // A listing that timed out, or a daemon that went away mid-pass: the ping
                // before the next pass may well answer, so back off here too (no relist loop).
                if !self.back_off(stop).await {
                    return;
                }
                due = Some(Trigger::Recovered);
            } else {
                self.backoff.reset();
            }
            if stop.is_cancelled() {
                return;
            }
        }
    }

    /// Wait for the next tick. `None` means "nothing to run": stop requested, config
    /// reloaded (ticks re-planned) or a between-passes probe done.
    async fn idle(&mut self, stop: &CancellationToken) -> Option<Trigger> {
        self.telemetry.beat();
        let fire = self.ticks.next.map(|t| t.fire);
        let clock = &self.clock;
        let tick = async move {
            match fire {
                Some(at) => sleep_until_wall(clock, at).await,
                None => pending().await,
            }
        };
        tokio::select! {
            () = stop.cancelled() => None,
            () = tick => {
                self.ticks.advance(self.clock.now());
                self.publish_next();
                Some(Trigger::Schedule)
            }
            changed = self.config.changed(), if self.reload_open => {
                if changed.is_err() {
                    self.reload_open = false;
                    return None;
                }
                let config = self.current_config();
                let schedule = ScheduleKey::of(&config);
                if schedule == self.schedule {
                    tracing::debug!(next = ?self.ticks.next, "schedule unchanged by the reload; next tick kept");
                    return None;
                }
                self.schedule = schedule;
                self.ticks.reset((self.tickers)(&config), config.agent.jitter, self.clock.now());
                self.publish_next();
                tracing::debug!(next = ?self.ticks.next, "schedule re-planned after reload");
                None
            }
            () = self.wake.notified() => {
                let now = tokio::time::Instant::now();
                let forecast = self.forecasts.take();
                if self.early.may_run(now) {
                    return Some(forecast.map_or(Trigger::DiskPressure, Trigger::Forecast));
                }
                let wait = self.early.not_before().map(|t| t - now);
                tracing::debug!(retry_in = ?wait, "disk over high, but the last pass could not relieve it: no early pass yet");
                None
            }
            () = tokio::time::sleep(self.probe_every) => {
                match self.ensure_reachable(stop).await {
                    Some(true) => Some(Trigger::Recovered),
                    _ => None,
                }
            }
        }
    }

    /// Probe the engine; when it does not answer, back off until it does.
    /// `None`: stop requested. `Some(true)`: recovered after ticks were skipped.
    async fn ensure_reachable(&mut self, stop: &CancellationToken) -> Option<bool> {
        let skipped_before = self.ticks.skipped;
        loop {
            let config = self.current_config();
            let probe = self.backend.probe(&config);
            let probed = busy(
                probe,
                &mut self.ticks,
                &self.clock,
                &self.telemetry,
                SkipReason::DockerUnreachable,
            );
            let result = tokio::select! {
                () = stop.cancelled() => return None,
                r = probed => r,
            };
            match result {
                Ok(engine) => {
                    self.telemetry.engine_reachable(&engine);
                    return Some(self.ticks.skipped > skipped_before);
                }
                Err(e) => self.telemetry.engine_unreachable(&e.to_string()),
            }
            if !self.back_off(stop).await {
                return None;
            }
        }
    }

    /// Wait for the next backoff delay, skipping the ticks that fire meanwhile. False: stop
    /// requested.
    async fn back_off(&mut self, stop: &CancellationToken) -> bool {
        let delay = self.backoff.next_delay();
        tracing::debug!(retry_in = ?delay, "waiting before the next attempt to reach docker");
        let nap = async {
            tokio::select! {
                () = stop.cancelled() => false,
                () = tokio::time::sleep(delay) => true,
            }
        };
        busy(
            nap,
            &mut self.ticks,
            &self.clock,
            &self.telemetry,
            SkipReason::DockerUnreachable,
        )
        .await
    }

    /// Run one pass. `None`: stopping. `Some(true)`: the engine went away during the pass.
    async fn one_pass(&mut self, trigger: Trigger, stop: &CancellationToken) -> Option<bool> {
        self.passes += 1;
        let config = self.current_config();
        let span = tracing::info_span!("pass", n = self.passes, trigger = trigger.as_str());
        if let Trigger::Forecast(due) = trigger {
            self.telemetry.metrics.forecast_pass_started();
            let _in_span = span.enter();
            tracing::info!(reason = %due.reason(), high_percent = due.high, "running the pressure pass before the disk reaches high");
        }
        let started = tokio::time::Instant::now();
        let planned = trigger.pass_config(&config);
        let pass = self
            .backend
            .pass(&planned, &self.clock, stop)
            .instrument(span.clone());
        let result = busy(
            pass,
            &mut self.ticks,
            &self.clock,
            &self.telemetry,
            SkipReason::PassRunning,
        )
        .await;
        let secs = started.elapsed().as_secs_f64();
        self.forecasts.pass_took(started.elapsed());
        let _in_span = span.enter();
        match result {
            Ok(mut s) => {
                trigger.restore_high(&mut s, &config);
                tracing::info!(
                    deleted = s.deleted,
                    reclaimed = %crate::units::fmt_bytes(s.reclaimed_bytes),
                    reclaimed_bytes = s.reclaimed_bytes,
                    kept = s.kept,
                    skipped = s.skipped,
                    failed = s.failed,
                    not_attempted = s.not_attempted,
                    duration_secs = s.duration_secs,
                    "pass finished"
                );
                self.telemetry.pass_finished(&s, self.clock.now());
                let every = config.disk.as_ref().and_then(|d| d.check_every);
                let now = tokio::time::Instant::now();
                let backoff =
                    every.and_then(|e| self.early.pass_finished(s.disk_pressure_stuck, now, e));
                if s.disk_pressure_stuck {
                    tracing::error!(early_passes_in = ?backoff, "{}", trigger.stuck_message());
                }
                if !std::mem::replace(&mut self.host_checked, true) {
                    let matched = s.images_matched();
                    if let Some(line) =
                        host_needs(matched, &s.build_cache, config.build_cache.len())
                    {
                        tracing::warn!("{line}");
                    }
                }
                Some(false)
            }
            Err(e) if e.is_cancelled() => None,
            Err(e) if e.is_unreachable() => {
                if let Some(done) = e.partial_summary() {
                    tracing::warn!(error = %e, deleted = done.deleted, "pass stopped: docker went away");
                    self.telemetry.metrics.count_images(done);
                }
                // Failed as a whole: health stays 503 until a pass succeeds, even when pings
                // answer again (a daemon that answers pings but hangs on listings is not well).
                self.telemetry
                    .pass_failed(&e.to_string(), secs, self.clock.now());
                self.telemetry.engine_unreachable(&e.to_string());
                Some(true)
            }
            Err(e) => {
                tracing::error!(error = %e, duration_secs = secs, "pass failed");
                self.telemetry
                    .pass_failed(&e.to_string(), secs, self.clock.now());
                Some(false)
            }
        }
    }

    fn current_config(&self) -> Arc<Config> {
        Arc::clone(&self.config.borrow())
    }

    fn publish_next(&self) {
        self.telemetry.next_pass(self.ticks.next.map(|t| t.fire));
    }
}

#[cfg(test)]
#[path = "runner_tests.rs"]
mod tests;
