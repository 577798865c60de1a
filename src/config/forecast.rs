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
    /// duration, that at most `check_every`). Default false.
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse_str;

    fn forecast_of(disk: &str) -> Result<ForecastConfig, String> {
        let yaml = format!("disk:\n  high: 85\n  low: 80\n{disk}");
        parse_str(&yaml, "c.yaml")
            .map(|c| c.disk.expect("a disk section").forecast)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn the_forecast_keys_and_their_defaults() {
        let default = ForecastConfig {
            window: DEFAULT_FORECAST_WINDOW,
            preempt: false,
        };
        assert_eq!(forecast_of("  check_every: 1m\n"), Ok(default));
        assert_eq!(
            forecast_of("  check_every: 10s\n  forecast:\n    window: 5m\n    preempt: true\n"),
            Ok(ForecastConfig {
                window: Duration::from_secs(300),
                preempt: true
            })
        );
    }

    #[test]
    fn a_forecast_without_checks_or_with_too_short_a_window_is_refused_with_the_way_out() {
        let e = forecast_of("  forecast:\n    preempt: true\n").expect_err("no check_every");
        assert!(
            e.contains("disk.forecast needs disk.check_every")
                && e.contains("set disk.check_every"),
            "{e}"
        );
        let e = forecast_of("  check_every: 1m\n  forecast:\n    window: 2m\n")
            .expect_err("two checks");
        assert!(
            e.contains("c.yaml:6:13")
                && e.contains("disk.forecast.window")
                && e.contains("3 × disk.check_every"),
            "{e}"
        );
        let e = forecast_of("  check_every: 1m\n  forecast:\n    windw: 1h\n").expect_err("typo");
        assert!(e.contains("windw"), "{e}");
    }
}
