//! stderr, shared by the progress bar and the log lines: while a bar is shown, every log line
//! is written through the bar's `suspend` (the bar is cleared, the line written, the bar
//! redrawn), so per-deletion `info` lines never tear it.
//!
//! The one bar on screen is kept in a process-wide slot because stderr is process-wide too:
//! [`Progress`] fills the slot while it lives, [`LogWriter`] (the tracing writer) reads it.

use std::io::{self, Write};
use std::sync::{Mutex, PoisonError};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tracing_subscriber::fmt::MakeWriter;

/// The bar currently drawn on stderr, if any.
static ACTIVE: Mutex<Option<ProgressBar>> = Mutex::new(None);

fn active() -> Option<ProgressBar> {
    ACTIVE
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone()
}

fn set_active(bar: Option<ProgressBar>) {
    *ACTIVE.lock().unwrap_or_else(PoisonError::into_inner) = bar;
}

/// A progress bar over `len` deletions; cleared and released when dropped.
pub struct Progress {
    bar: ProgressBar,
    shown: bool,
}

impl Progress {
    /// A bar on stderr when `enabled`, else a hidden one that draws nothing.
    #[must_use]
    pub fn deletions(enabled: bool, len: usize) -> Self {
        if enabled {
            Self::on(ProgressDrawTarget::stderr(), len)
        } else {
            Self {
                bar: ProgressBar::hidden(),
                shown: false,
            }
        }
    }

    /// A bar drawn to `target`; log lines suspend it until it is dropped.
    #[must_use]
    pub fn on(target: ProgressDrawTarget, len: usize) -> Self {
        let bar = ProgressBar::with_draw_target(Some(len as u64), target);
        bar.set_style(
            ProgressStyle::with_template("{spinner} deleting {pos}/{len} images [{bar:30}] {eta}")
                .expect("the template is a constant that parses")
                .progress_chars("=> "),
        );
        set_active(Some(bar.clone()));
        Self { bar, shown: true }
    }

    #[must_use]
    pub fn bar(&self) -> &ProgressBar {
        &self.bar
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if self.shown {
            set_active(None);
        }
        self.bar.finish_and_clear();
    }
}

/// The tracing writer: stderr, suspending the bar on screen while a line is written.
#[derive(Debug, Clone, Copy, Default)]
pub struct LogWriter;

impl<'a> MakeWriter<'a> for LogWriter {
    type Writer = Suspending<io::Stderr>;

    fn make_writer(&'a self) -> Self::Writer {
        Suspending(io::stderr())
    }
}

/// Writes to `W`, each write inside the active bar's `suspend`.
pub struct Suspending<W>(pub W);

impl<W: Write> Write for Suspending<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        // tracing writes one whole formatted line per call.
        match active() {
            Some(bar) => bar.suspend(|| self.0.write_all(buf))?,
            None => self.0.write_all(buf)?,
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use indicatif::TermLike;

    use super::*;

    /// A terminal and a log sink that record, in order, what reaches the screen.
    #[derive(Debug, Clone, Default)]
    struct Screen(Arc<Mutex<Vec<String>>>);

    impl Screen {
        fn push(&self, what: String) {
            self.0.lock().expect("test lock").push(what);
        }
        fn seen(&self) -> Vec<String> {
            self.0.lock().expect("test lock").clone()
        }
    }

    impl TermLike for Screen {
        fn width(&self) -> u16 {
            80
        }
        fn move_cursor_up(&self, n: usize) -> io::Result<()> {
            self.push(format!("up {n}"));
            Ok(())
        }
        fn move_cursor_down(&self, _: usize) -> io::Result<()> {
            Ok(())
        }
        fn move_cursor_right(&self, _: usize) -> io::Result<()> {
            Ok(())
        }
        fn move_cursor_left(&self, _: usize) -> io::Result<()> {
            Ok(())
        }
        fn write_line(&self, s: &str) -> io::Result<()> {
            self.push(format!("bar {s}"));
            Ok(())
        }
        fn write_str(&self, s: &str) -> io::Result<()> {
            self.push(format!("bar {s}"));
            Ok(())
        }
        fn clear_line(&self) -> io::Result<()> {
            self.push("clear".into());
            Ok(())
        }
        fn flush(&self) -> io::Result<()> {
            Ok(())
        }
    }

    impl Write for Screen {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.push(format!("log {}", String::from_utf8_lossy(buf).trim_end()));
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    // One test touches the process-wide slot, so there is no race between tests.
    #[test]
    fn a_log_line_clears_the_bar_first_and_the_bar_comes_back_after_it() {
        let screen = Screen::default();
        let progress = Progress::on(ProgressDrawTarget::term_like(Box::new(screen.clone())), 3);
        progress.bar().inc(1);
        Suspending(screen.clone())
            .write_all(b"INFO deleted image\n")
            .expect("write");
        progress.bar().inc(1);
        let seen = screen.seen();
        let log = seen
            .iter()
            .position(|s| s == "log INFO deleted image")
            .expect("the line was written");
        let last_bar_before = seen[..log]
            .iter()
            .rposition(|s| s.starts_with("bar ") && s.contains("deleting 1/3"))
            .expect("the bar was drawn before the line");
        assert!(
            seen[last_bar_before..log].iter().any(|s| s == "clear"),
            "the bar is cleared before the line: {seen:?}"
        );
        assert!(
            seen[log..].iter().any(|s| s.contains("deleting")),
            "the bar is redrawn after the line: {seen:?}"
        );
        drop(progress);
        assert!(active().is_none(), "a dropped bar is no longer suspended");
        let before = screen.seen().len();
        Suspending(screen.clone())
            .write_all(b"INFO later\n")
            .expect("write");
        assert_eq!(screen.seen()[before..], ["log INFO later".to_owned()]);
    }
}
