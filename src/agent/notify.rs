//! systemd notifications (`Type=notify`): READY, STATUS, RELOADING, STOPPING and watchdog
//! pings. Every call is a no-op when `NOTIFY_SOCKET` is unset (not started by systemd).

use std::time::Duration;

use sd_notify::NotifyState;

/// Send states; a failure is logged at debug level and otherwise ignored (systemd will
/// notice a missing READY by itself).
pub fn send(states: &[NotifyState]) {
    if let Err(e) = sd_notify::notify(states) {
        tracing::debug!(error = %e, "cannot notify systemd");
    }
}

/// READY=1 with a status.
pub fn ready(status: &str) {
    send(&[NotifyState::Ready, NotifyState::Status(status)]);
}

/// RELOADING=1 with the monotonic time systemd asks for (`Type=notify-reload`).
pub fn reloading() {
    match NotifyState::monotonic_usec_now() {
        Ok(now) => send(&[NotifyState::Reloading, now]),
        Err(_) => send(&[NotifyState::Reloading]),
    }
}

/// STOPPING=1.
pub fn stopping() {
    send(&[NotifyState::Stopping, NotifyState::Status("stopping")]);
}

/// The watchdog period to ping at (half of `WATCHDOG_USEC`), when systemd set one.
#[must_use]
pub fn watchdog_period() -> Option<Duration> {
    sd_notify::watchdog_enabled().map(|d| d / 2)
}

/// Ping the watchdog every `period`, forever. Runs as a task on the agent's runtime, so a
/// wedged runtime stops the pings and systemd restarts the agent.
pub async fn watchdog(period: Duration) {
    let mut every = tokio::time::interval(period.max(Duration::from_millis(100)));
    loop {
        every.tick().await;
        send(&[NotifyState::Watchdog]);
    }
}
