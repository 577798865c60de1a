//! The `disk.forecast:` section: how long a window of the agent's disk checks the fill rate
//! is fitted over, and whether a forecast of `high` within the next check runs the pressure
//! pass before the disk gets there. Typed values and their validation; the fit itself is the
//! agent's (`agent::forecast`).

use std::time::Duration;

use super::ctx::Ctx;
use super::raw::RawForecast;
use super::values::{self, Bad};

/// Default `disk.forecast.window`.
pub const DEFAULT_FORECAST_WINDOW: Duration = Duration::from_secs(30 * 60);

/// `disk.forecast:` section.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ForecastConfig {
    /// How far back the fill rate looks: the disk checks of the last `window` (at most 512 of
    /// them, the newest), since the last drop. Default 30m.
    pub window: Duration,
    /// Run the pressure pass early when the disk is forecast to reach `high` before a pass
    /// after the next check would be done (`check_every` plus twice the last pass's
    /// duration). Default false.
    pub preempt: bool,
}

impl Default for ForecastConfig {
    fn default() -> Self {
        Self {
            window: DEFAULT_FORECAST_WINDOW,
            preempt: false,
        }
    }
}

/// `disk.forecast:`, which needs `disk.check_every` (the forecast is fitted to its samples)
/// and a window that holds at least three of them.
pub(super) fn forecast(
    ctx: &mut Ctx,
    raw: Option<&RawForecast>,
    check_every: Option<Duration>,
) -> ForecastConfig {
    let mut out = ForecastConfig::default();
    let Some(raw) = raw else { return out };
    if let Some(p) = raw.preempt {
        out.preempt = p;
    }
    if let Some(w) = &raw.window
        && let Some(window) = ctx.check(w, "disk.forecast.window", |t| window(t, check_every))
    {
        out.window = window;
    }
    if check_every.is_none() {
        let bad = Bad::new(
            "disk.forecast needs disk.check_every: the forecast is fitted to the agent's disk checks",
            "set disk.check_every (e.g. 1m), or remove disk.forecast",
        );
        let at = raw
            .window
            .as_ref()
            .map_or(serde_saphyr::Location::UNKNOWN, |w| w.referenced);
        ctx.push(at, "disk.forecast", bad);
    }
    out
}

fn window(text: &str, check_every: Option<Duration>) -> Result<Duration, Bad> {
    let w = values::duration("window", text)?;
    let every = check_every.unwrap_or_default();
    if w.is_zero() || w < every.saturating_mul(3) {
        return Err(Bad::new(
            format!("window {text:?} holds fewer than three disk checks"),
            "a fill rate needs at least three samples: make the window at least 3 × disk.check_every, e.g. 30m",
        ));
    }
    Ok(w)
}
