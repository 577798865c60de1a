//! Schedules: 5-field crontab (croner, strict), `@hourly`/`@daily`/`@weekly`, `@every <duration>`.
//!
//! Owns parsing a schedule expression once, at config load, and computing the next tick in
//! a time zone. Crontab follows Vixie cron: Sunday is 0 or 7, day-of-month and day-of-week
//! are OR-ed when both are restricted, and DST gaps/overlaps are handled like Vixie (a fixed
//! time inside a spring-forward gap runs right after the gap; a fixed time inside a
//! fall-back overlap runs once). Must not read the clock: callers pass `after`.

use std::fmt;
use std::time::Duration;

use chrono::{DateTime, Utc};
use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};

/// The way out, appended to every schedule error.
const FORMS: &str = "use standard 5-field crontab (minute hour day month weekday), \
                     @hourly/@daily/@weekly or @every 15m";

/// A parsed schedule; `Display` gives the text as written.
#[derive(Debug, Clone)]
pub struct Schedule {
    text: String,
    kind: Kind,
}

#[derive(Debug, Clone)]
enum Kind {
    /// A crontab expression (macros are expanded by croner).
    Cron(Box<Cron>),
    /// `@every <duration>`: a fixed interval from the previous tick.
    Every(Duration),
}

impl Schedule {
    /// Parse a schedule expression.
    ///
    /// Forms: 5-field crontab, `@hourly`, `@daily` (`@midnight`), `@weekly`, `@monthly`,
    /// `@yearly` (`@annually`), and `@every <humantime duration>` (1s to 100 years).
    ///
    /// # Errors
    /// A lowercase message naming the expression and the accepted forms.
    pub fn parse(text: &str) -> Result<Self, String> {
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return Err(format!("schedule is empty; {FORMS}"));
        }
        let kind = if let Some(rest) = trimmed.strip_prefix('@') {
            parse_macro(trimmed, rest)?
        } else {
            parse_crontab(trimmed)?
        };
        Ok(Self {
            text: trimmed.to_owned(),
            kind,
        })
    }

    /// The first tick strictly after `after`, with the crontab read in `tz`; for
    /// `@every` it is `after + interval`. `None` when no such time exists (e.g. a
    /// crontab for February 30th).
    #[must_use]
    pub fn next_after(&self, after: DateTime<Utc>, tz: chrono_tz::Tz) -> Option<DateTime<Utc>> {
        match &self.kind {
            Kind::Every(interval) => {
                let step = chrono::Duration::from_std(*interval).ok()?;
                after.checked_add_signed(step)
            }
            Kind::Cron(cron) => {
                let local = after.with_timezone(&tz);
                let next = cron.find_next_occurrence(&local, false).ok()?;
                Some(next.with_timezone(&Utc))
            }
        }
    }

    /// The fixed interval of an `@every` schedule; `None` for crontab schedules.
    #[must_use]
    pub fn interval(&self) -> Option<Duration> {
        match self.kind {
            Kind::Every(d) => Some(d),
            Kind::Cron(_) => None,
        }
    }

    /// The expression as written (trimmed).
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl PartialEq for Schedule {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

/// `@…` forms; `rest` is the text after `@`.
fn parse_macro(text: &str, rest: &str) -> Result<Kind, String> {
    let lower = rest.to_ascii_lowercase();
    if let Some(duration) = lower.strip_prefix("every") {
        return parse_every(text, duration);
    }
    let pattern = match lower.as_str() {
        "hourly" => "@hourly",
        "daily" | "midnight" => "@daily",
        "weekly" => "@weekly",
        "monthly" => "@monthly",
        "yearly" | "annually" => "@yearly",
        _ => {
            return Err(format!(
                "schedule {text:?} is not a known macro (@hourly, @daily, @midnight, @weekly, \
                 @monthly, @yearly, @every <duration>); {FORMS}"
            ));
        }
    };
    strict_parser()
        .parse(pattern)
        .map(|c| Kind::Cron(Box::new(c)))
        .map_err(|e| {
            format!(
                "schedule {text:?} is invalid: {}; {FORMS}",
                croner_message(&e)
            )
        })
}

fn parse_every(text: &str, duration: &str) -> Result<Kind, String> {
    let duration = duration.trim();
    if duration.is_empty() {
        return Err(format!(
            "schedule {text:?} has no duration; write it like @every 15m or @every 6h"
        ));
    }
    let interval = humantime::parse_duration(duration).map_err(|e| {
        format!("schedule {text:?} has an invalid duration {duration:?}: {e}; write it like @every 15m or @every 6h")
    })?;
    if interval < Duration::from_secs(1) {
        return Err(format!(
            "schedule {text:?} is shorter than 1s; use @every 1s or longer"
        ));
    }
    if interval > super::values::MAX_DURATION {
        return Err(format!(
            "schedule {text:?} is longer than 100 years; use @every 100y or shorter"
        ));
    }
    Ok(Kind::Every(interval))
}

fn parse_crontab(text: &str) -> Result<Kind, String> {
    let fields = text.split_whitespace().count();
    if fields != 5 {
        return Err(format!("schedule {text:?} has {fields} fields; {FORMS}"));
    }
    strict_parser()
        .parse(text)
        .map(|c| Kind::Cron(Box::new(c)))
        .map_err(|e| {
            format!(
                "schedule {text:?} is invalid: {}; {FORMS}",
                croner_message(&e)
            )
        })
}

/// Standard crontab only: no seconds field, no year field, Vixie DOM/DOW OR.
fn strict_parser() -> CronParser {
    CronParser::builder()
        .seconds(Seconds::Disallowed)
        .year(Year::Disallowed)
        .build()
}

/// croner's message without its prefixes, lowercased at the start, no final period:
/// `Component error: Number out of bounds.` → `number out of bounds`.
fn croner_message(e: &croner::errors::CronError) -> String {
    let text = e.to_string();
    let mut text = text.trim_end_matches('.');
    for prefix in [
        "Component error: ",
        "Invalid pattern: ",
        "Pattern contains illegal characters: ",
        "CronPattern contains ",
    ] {
        text = text.strip_prefix(prefix).unwrap_or(text);
    }
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use chrono_tz::{Europe::Berlin, Tz, UTC};

    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, 0)
            .single()
            .expect("valid test date")
    }

    fn next(expr: &str, after: DateTime<Utc>, tz: Tz) -> DateTime<Utc> {
        Schedule::parse(expr)
            .expect("test expression parses")
            .next_after(after, tz)
            .expect("a next tick exists")
    }

    #[test]
    fn crontab_next_times_in_utc() {
        // 2026-01-05 is a Monday.
        let cases = [
            (
                "*/15 * * * *",
                utc(2026, 1, 5, 10, 7),
                utc(2026, 1, 5, 10, 15),
            ),
            (
                "*/15 * * * *",
                utc(2026, 1, 5, 10, 15),
                utc(2026, 1, 5, 10, 30),
            ),
            ("0 3 * * *", utc(2026, 1, 5, 3, 0), utc(2026, 1, 6, 3, 0)),
            ("30 2 1 * *", utc(2026, 1, 5, 0, 0), utc(2026, 2, 1, 2, 30)),
            ("0 9 * * 1-5", utc(2026, 1, 9, 9, 0), utc(2026, 1, 12, 9, 0)),
            ("0 0 * * MON", utc(2026, 1, 5, 0, 0), utc(2026, 1, 12, 0, 0)),
        ];
        for (expr, after, want) in cases {
            assert_eq!(next(expr, after, UTC), want, "{expr} after {after}");
        }
    }

    #[test]
    fn sunday_is_zero_or_seven() {
        // 2026-01-05 is a Monday; the next Sunday is 2026-01-11.
        for expr in ["0 4 * * 0", "0 4 * * 7", "0 4 * * SUN"] {
            assert_eq!(
                next(expr, utc(2026, 1, 5, 0, 0), UTC),
                utc(2026, 1, 11, 4, 0),
                "{expr}"
            );
        }
    }

    #[test]
    fn day_of_month_and_day_of_week_are_ored() {
        // "on the 15th OR on Fridays": from Monday 2026-01-05 the next is Friday the 9th,
        // then Thursday the 15th (not a Friday), then Friday the 16th.
        let expr = "0 0 15 * 5";
        assert_eq!(
            next(expr, utc(2026, 1, 5, 0, 0), UTC),
            utc(2026, 1, 9, 0, 0)
        );
        assert_eq!(
            next(expr, utc(2026, 1, 9, 0, 0), UTC),
            utc(2026, 1, 15, 0, 0)
        );
        assert_eq!(
            next(expr, utc(2026, 1, 15, 0, 0), UTC),
            utc(2026, 1, 16, 0, 0)
        );
    }

    #[test]
    fn macros() {
        let after = utc(2026, 1, 7, 10, 20); // a Wednesday
        let cases = [
            ("@hourly", utc(2026, 1, 7, 11, 0)),
            ("@daily", utc(2026, 1, 8, 0, 0)),
            ("@midnight", utc(2026, 1, 8, 0, 0)),
            ("@weekly", utc(2026, 1, 11, 0, 0)),
            ("@monthly", utc(2026, 2, 1, 0, 0)),
            ("@yearly", utc(2027, 1, 1, 0, 0)),
            ("@HOURLY", utc(2026, 1, 7, 11, 0)),
        ];
        for (expr, want) in cases {
            assert_eq!(next(expr, after, UTC), want, "{expr}");
        }
    }

    #[test]
    fn every_adds_the_interval_in_any_zone() {
        let after = utc(2026, 3, 29, 0, 59);
        for (expr, secs) in [
            ("@every 15m", 900),
            ("@every 1s", 1),
            ("@every 36h", 129_600),
        ] {
            let s = Schedule::parse(expr).expect("parses");
            assert_eq!(s.interval(), Some(Duration::from_secs(secs)));
            let want = after + chrono::Duration::seconds(i64::try_from(secs).expect("small"));
            assert_eq!(s.next_after(after, Berlin), Some(want), "{expr}");
        }
    }

    #[test]
    fn crontab_is_read_in_the_time_zone() {
        // 03:00 in Berlin is 02:00 UTC in winter (CET, +1).
        assert_eq!(
            next("0 3 * * *", utc(2026, 1, 5, 12, 0), Berlin),
            utc(2026, 1, 6, 2, 0)
        );
        // and 01:00 UTC in summer (CEST, +2).
        assert_eq!(
            next("0 3 * * *", utc(2026, 7, 5, 12, 0), Berlin),
            utc(2026, 7, 6, 1, 0)
        );
    }

    #[test]
    fn dst_spring_forward_in_berlin() {
        // 2026-03-29 02:00 CET jumps to 03:00 CEST (01:00 UTC): 02:30 does not exist.
        // Like Vixie cron, the job runs right after the gap, at 03:00 CEST = 01:00 UTC.
        let after = utc(2026, 3, 28, 23, 0); // 00:00 CET
        assert_eq!(next("30 2 * * *", after, Berlin), utc(2026, 3, 29, 1, 0));
        // The following day is normal again: 02:30 CEST = 00:30 UTC.
        assert_eq!(
            next("30 2 * * *", utc(2026, 3, 29, 1, 0), Berlin),
            utc(2026, 3, 30, 0, 30)
        );
        // Hourly ticks skip the missing hour: after 01:00 CET (00:00 UTC) comes 03:00 CEST.
        assert_eq!(
            next("@hourly", utc(2026, 3, 29, 0, 0), Berlin),
            utc(2026, 3, 29, 1, 0)
        );
    }

    #[test]
    fn dst_fall_back_in_berlin() {
        // 2026-10-25 03:00 CEST falls back to 02:00 CET: 02:30 happens twice
        // (00:30 UTC and 01:30 UTC). A fixed-time job runs once, at the first.
        let first = next("30 2 * * *", utc(2026, 10, 24, 22, 0), Berlin);
        assert_eq!(first, utc(2026, 10, 25, 0, 30));
        assert_eq!(next("30 2 * * *", first, Berlin), utc(2026, 10, 26, 1, 30));
        // Hourly ticks keep going through the repeated hour, one real hour apart.
        let mut t = utc(2026, 10, 24, 23, 30);
        let mut ticks = Vec::new();
        for _ in 0..4 {
            t = next("@hourly", t, Berlin);
            ticks.push(t);
        }
        assert_eq!(
            ticks,
            [
                utc(2026, 10, 25, 0, 0),
                utc(2026, 10, 25, 1, 0),
                utc(2026, 10, 25, 2, 0),
                utc(2026, 10, 25, 3, 0),
            ]
        );
    }

    #[test]
    fn display_is_the_text_as_written() {
        for expr in ["*/15 * * * *", "@hourly", "@every 15m", "0 3 * * MON-FRI"] {
            assert_eq!(Schedule::parse(expr).expect("parses").to_string(), expr);
        }
    }

    #[test]
    fn bad_expressions_name_the_value_and_the_way_out() {
        let cases = [
            (
                "0 */15 * * * *",
                "schedule \"0 */15 * * * *\" has 6 fields; use standard 5-field crontab",
            ),
            ("* * * *", "has 4 fields"),
            ("", "schedule is empty"),
            ("0 0 * * * 2026", "has 6 fields"),
            (
                "61 * * * *",
                "schedule \"61 * * * *\" is invalid: number out of bounds",
            ),
            ("*/0 * * * *", "is invalid: step cannot be zero"),
            ("* 24 * * *", "is invalid"),
            ("* * * * 8", "is invalid"),
            ("x * * * *", "is invalid: illegal character 'X'"),
            ("@reboot", "is not a known macro"),
            ("@every", "has no duration"),
            ("@every 15", "has an invalid duration \"15\""),
            ("@every 500ms", "is shorter than 1s"),
            ("@every 101y", "is longer than 100 years"),
            ("@every 1000000000000y", "invalid duration"),
            ("@every soon", "invalid duration"),
        ];
        for (expr, want) in cases {
            let err = Schedule::parse(expr).expect_err(expr);
            assert!(err.contains(want), "{expr}: {err}");
            assert!(
                err.contains("@every") || err.contains("5-field"),
                "{expr}: no way out in {err}"
            );
        }
    }
}
