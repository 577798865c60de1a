//! The engine's data usage (`/system/df`), bounded: it runs beside the listings, and once
//! they are in it gets [`GRACE`] more. On a busy host (API < 1.42 also sizes every
//! container's writable layer) it can take minutes; a pass never waits for it that long.
//! A late answer is dropped and the pass goes on with estimates and a notice, as when the
//! engine cannot tell its data usage at all. Decides nothing.

use std::future::Future;
use std::time::Duration;

use crate::engine::{DataUsage, Engine, EngineError};

/// How long the data usage may take beyond the listings (and, read again after the
/// deletions, at all).
pub const GRACE: Duration = Duration::from_secs(10);

/// The error of a data usage that did not answer within [`GRACE`] (`of the listing`).
fn late(of: &str) -> EngineError {
    EngineError::Other(format!(
        "no answer within {}s{of}; a busy engine computes it slowly, the next pass asks again",
        GRACE.as_secs()
    ))
}

/// Run `listing` and the data usage side by side; the data usage gets [`GRACE`] more once
/// the listing is in. A failed listing returns at once.
pub(super) async fn beside<E: Engine, T>(
    engine: &E,
    listing: impl Future<Output = Result<T, EngineError>>,
) -> Result<(T, Result<DataUsage, EngineError>), EngineError> {
    // Boxed: the data usage step would make every pass future large.
    let mut usage = Box::pin(engine.data_usage());
    let mut listing = std::pin::pin!(listing);
    let (listed, early) = tokio::select! {
        listed = &mut listing => (listed, None),
        usage = &mut usage => (listing.await, Some(usage)),
    };
    let listed = listed?;
    let usage = match early {
        Some(usage) => usage,
        None => tokio::time::timeout(GRACE, usage)
            .await
            .unwrap_or_else(|_| Err(late(" of the listing"))),
    };
    Ok((listed, usage))
}

/// The data usage alone, within [`GRACE`].
pub(super) async fn bounded<E: Engine>(engine: &E) -> Result<DataUsage, EngineError> {
    tokio::time::timeout(GRACE, Box::pin(engine.data_usage()))
        .await
        .unwrap_or_else(|_| Err(late("")))
}
