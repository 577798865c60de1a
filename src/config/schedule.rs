//! Schedules: 5-field crontab (croner, strict), `@hourly`/`@daily`/`@weekly`, `@every <duration>`.

/// A parsed schedule.
#[derive(Debug, Clone)]
pub struct Schedule;
