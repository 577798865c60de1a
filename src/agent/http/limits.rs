//! Limits that keep the metrics listener cheap under abuse (held-open idle connections,
//! huge request headers, floods), set with hyper's own HTTP/1 knobs plus a connection count.
//!
//! - at most [`MAX_CONNECTIONS`] connections are served at once; beyond that a new
//!   connection is closed as soon as it is accepted (memory and file descriptors stay bounded);
//! - a client has [`HEADER_TIMEOUT`] to send a complete request head, on a fresh connection
//!   and between requests on a kept-alive one; once [`BUSY_CONNECTIONS`] are open, new
//!   connections get only [`BUSY_HEADER_TIMEOUT`], so connections held open without a request
//!   (slowloris) are shed within a second while a real scrape, which sends its request at
//!   once, is still answered;
//! - a request head may take at most [`MAX_HEAD_BYTES`] (hyper's read buffer) and
//!   [`MAX_HEADERS`] header fields; a larger one is refused (431) or the connection closed.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use hyper::server::conn::http1;
use hyper_util::rt::TokioTimer;

/// Connections served at once.
pub const MAX_CONNECTIONS: usize = 512;
/// Open connections from which new ones get the short header timeout.
pub const BUSY_CONNECTIONS: usize = 64;
/// Time to send a request head, normally.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// Time to send a request head once [`BUSY_CONNECTIONS`] are open.
pub const BUSY_HEADER_TIMEOUT: Duration = Duration::from_secs(1);
/// Largest request head, in bytes (hyper's minimum read buffer is 8 KiB).
pub const MAX_HEAD_BYTES: usize = 16 * 1024;
/// Most header fields in a request.
pub const MAX_HEADERS: usize = 32;

/// Counts open connections; a [`Slot`] is one of them.
#[derive(Debug, Default, Clone)]
pub struct Connections(Arc<AtomicUsize>);

/// One open connection; frees its place when dropped.
#[derive(Debug)]
pub struct Slot {
    open: Arc<AtomicUsize>,
    /// How many were open before this one.
    pub before: usize,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.open.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Connections {
    /// A place for one more connection, or `None` at [`MAX_CONNECTIONS`].
    pub fn try_open(&self) -> Option<Slot> {
        let before = self
            .0
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < MAX_CONNECTIONS).then_some(n + 1)
            })
            .ok()?;
        Some(Slot {
            open: Arc::clone(&self.0),
            before,
        })
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.0.load(Ordering::Acquire)
    }
}

/// The HTTP/1 settings for a connection that found `slot.before` others open.
pub fn builder(slot: &Slot) -> http1::Builder {
    let timeout = if slot.before >= BUSY_CONNECTIONS {
        BUSY_HEADER_TIMEOUT
    } else {
        HEADER_TIMEOUT
    };
    let mut b = http1::Builder::new();
    b.timer(TokioTimer::new())
        .header_read_timeout(timeout)
        .max_buf_size(MAX_HEAD_BYTES)
        .max_headers(MAX_HEADERS);
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_capped_and_freed() {
        let c = Connections::default();
        let slots: Vec<Slot> = (0..MAX_CONNECTIONS)
            .map(|_| c.try_open().expect("below the cap"))
            .collect();
        assert_eq!(slots[BUSY_CONNECTIONS].before, BUSY_CONNECTIONS);
        assert!(c.try_open().is_none(), "at the cap");
        drop(slots);
        assert_eq!(c.open(), 0);
        assert!(c.try_open().is_some());
    }
}
