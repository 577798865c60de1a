//! Where log lines go and how they look: the filter (`-q`/`-v` or `RUST_LOG`), colour only on a
//! terminal and never with `NO_COLOR`, and the systemd journal's conventions when stderr is the
//! journal (`JOURNAL_STREAM`): no timestamp (journald adds its own) and a `<N>` syslog priority
//! prefix on every line, which journald turns into the entry's priority.
//!
//! Why `<N>` prefixes rather than `tracing-journald`: they travel on the stderr stream systemd
//! already captures, so they need no extra socket (none is reachable in a hardened unit with a
//! private `/run`, nor in a container that inherited `JOURNAL_STREAM`), keep the order of lines
//! with anything else written to stderr, and add no dependency. Structured fields stay readable
//! as `key=value` text; `--log-format json` is the machine-readable form.
//!
//! Owns the tracing subscriber set-up only; lines are written through
//! [`crate::progress::LogWriter`] so they never tear a progress bar.

use std::ffi::OsStr;
use std::fmt;
use std::io::IsTerminal;
use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

use super::cli::LogFormat;
use crate::progress::LogWriter;

/// How text lines are decorated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// stderr is the systemd journal: `<N>` priority prefix, no timestamp, no colour.
    Journal,
    /// Timestamped lines, coloured when `color`.
    Plain { color: bool },
}

impl Style {
    /// The style for a process whose stderr is (or is not) a terminal and the journal, given
    /// the `NO_COLOR` variable (<https://no-color.org>: set and non-empty disables colour).
    #[must_use]
    pub fn detect(stderr_is_tty: bool, stderr_is_journal: bool, no_color: Option<&OsStr>) -> Self {
        if stderr_is_journal {
            return Style::Journal;
        }
        let no_color = no_color.is_some_and(|v| !v.is_empty());
        Style::Plain {
            color: stderr_is_tty && !no_color,
        }
    }

    /// The style for this process.
    #[must_use]
    pub fn from_env() -> Self {
        let journal = std::env::var_os("JOURNAL_STREAM");
        Self::detect(
            std::io::stderr().is_terminal(),
            is_journal_stream(journal.as_deref(), stderr_id()),
            std::env::var_os("NO_COLOR").as_deref(),
        )
    }
}

/// True when `JOURNAL_STREAM` (`<device>:<inode>`, set by systemd for services whose output
/// goes to the journal) names the file stderr is: a child whose stderr was redirected
/// elsewhere inherits the variable but must not use the journal's format.
#[must_use]
pub fn is_journal_stream(var: Option<&OsStr>, stderr: Option<(u64, u64)>) -> bool {
    let Some((dev, ino)) = var.and_then(OsStr::to_str).and_then(|v| v.split_once(':')) else {
        return false;
    };
    match (dev.parse::<u64>(), ino.parse::<u64>(), stderr) {
        (Ok(dev), Ok(ino), Some(id)) => (dev, ino) == id,
        _ => false,
    }
}

/// Device and inode of the file behind stderr.
fn stderr_id() -> Option<(u64, u64)> {
    let fd = std::io::stderr().as_fd().try_clone_to_owned().ok()?;
    let meta = std::fs::File::from(fd).metadata().ok()?;
    Some((meta.dev(), meta.ino()))
}

/// The log filter: `-q`/`-v` when given (the command line wins over the environment), else
/// `RUST_LOG`, else `info`.
#[must_use]
pub fn filter_directives(quiet: u8, verbose: u8, rust_log: Option<&str>) -> String {
    let from_flags = match (quiet, verbose) {
        (0, 0) => None,
        (1, _) => Some("warn"),
        (_, 0) => Some("error"),
        (_, 1) => Some("info,stagesweep=debug"),
        (_, 2) => Some("info,stagesweep=trace"),
        _ => Some("debug,stagesweep=trace"),
    };
    match (
        from_flags,
        rust_log.map(str::trim).filter(|v| !v.is_empty()),
    ) {
        (Some(flags), _) => flags.to_owned(),
        (None, Some(env)) => env.to_owned(),
        (None, None) => "info".to_owned(),
    }
}

/// Install the global subscriber: stderr, the given format and filter, the detected style.
pub fn init(format: LogFormat, quiet: u8, verbose: u8) {
    let directives = filter_directives(quiet, verbose, std::env::var("RUST_LOG").ok().as_deref());
    let filter = EnvFilter::try_new(&directives).unwrap_or_else(|e| {
        eprintln!("stagesweep: ignoring RUST_LOG={directives:?} ({e}); logging at info");
        EnvFilter::new("info")
    });
    let style = Style::from_env();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(LogWriter);
    match (format, style) {
        // JSON lines stay pure JSON (no prefix) and keep their timestamp: they are data.
        (LogFormat::Json, _) => builder.json().with_ansi(false).init(),
        (LogFormat::Text, Style::Journal) => builder
            .with_ansi(false)
            .event_format(SyslogPriority(
                tracing_subscriber::fmt::format().without_time(),
            ))
            .init(),
        (LogFormat::Text, Style::Plain { color }) => builder.with_ansi(color).init(),
    }
}

/// The syslog priority (sd-daemon(3)) of a tracing level.
#[must_use]
pub fn priority(level: Level) -> u8 {
    match level {
        Level::ERROR => 3,
        Level::WARN => 4,
        Level::INFO => 6,
        Level::DEBUG | Level::TRACE => 7,
    }
}

/// Prefixes each event with `<N>`, its syslog priority, for journald's stream parser.
struct SyslogPriority<F>(F);

impl<S, N, F> FormatEvent<S, N> for SyslogPriority<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        write!(writer, "<{}>", priority(*event.metadata().level()))?;
        self.0.format_event(ctx, writer, event)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colour_only_on_a_terminal_without_no_color_and_never_in_the_journal() {
        let off = Some(OsStr::new("1"));
        let empty = Some(OsStr::new(""));
        assert_eq!(
            Style::detect(true, false, None),
            Style::Plain { color: true }
        );
        assert_eq!(
            Style::detect(true, false, empty),
            Style::Plain { color: true },
            "an empty NO_COLOR does not count"
        );
        assert_eq!(
            Style::detect(true, false, off),
            Style::Plain { color: false }
        );
        assert_eq!(
            Style::detect(false, false, None),
            Style::Plain { color: false }
        );
        assert_eq!(Style::detect(true, true, None), Style::Journal);
    }

    #[test]
    fn journal_stream_must_name_stderr() {
        let var = Some(OsStr::new("8:12345"));
        assert!(is_journal_stream(var, Some((8, 12345))));
        assert!(!is_journal_stream(var, Some((8, 99))), "redirected stderr");
        assert!(!is_journal_stream(var, None));
        assert!(!is_journal_stream(None, Some((8, 12345))));
        assert!(!is_journal_stream(
            Some(OsStr::new("8-12345")),
            Some((8, 12345))
        ));
        assert!(!is_journal_stream(Some(OsStr::new("x:1")), Some((8, 1))));
    }

    #[test]
    fn flags_win_over_rust_log() {
        assert_eq!(filter_directives(0, 0, None), "info");
        assert_eq!(filter_directives(0, 0, Some(" ")), "info");
        assert_eq!(
            filter_directives(0, 0, Some("bollard=debug")),
            "bollard=debug"
        );
        assert_eq!(filter_directives(1, 0, Some("debug")), "warn");
        assert_eq!(filter_directives(2, 0, None), "error");
        assert_eq!(
            filter_directives(0, 1, Some("warn")),
            "info,stagesweep=debug"
        );
        assert_eq!(filter_directives(0, 2, None), "info,stagesweep=trace");
        assert_eq!(filter_directives(0, 5, None), "debug,stagesweep=trace");
    }

    #[test]
    fn levels_map_to_syslog_priorities() {
        assert_eq!(priority(Level::ERROR), 3);
        assert_eq!(priority(Level::WARN), 4);
        assert_eq!(priority(Level::INFO), 6);
        assert_eq!(priority(Level::DEBUG), 7);
        assert_eq!(priority(Level::TRACE), 7);
    }
}
