//! An [`Engine`] wrapper for one pass that notices when the engine goes away mid-pass: it
//! stops answering, the connection breaks, or its answers are unreadable
//! ([`EngineError::is_gone`]). It then keeps the first such error and fires a token that asks
//! the pass to start no new deletions, so the rest of the plan is `not_attempted` and the pass
//! ends within one call's timeout instead of failing every remaining image one by one.
//! Decides nothing else; refusals (404, 409, 500) pass through untouched.

use std::sync::Mutex;

use tokio_util::sync::CancellationToken;

use super::{
    CachePrune, CachePruneReport, DataUsage, Engine, EngineError, EngineInfo, EventStream,
    ImageState, RemoveReport,
};
use crate::inventory::{Container, Image};

/// `inner`, watched.
pub struct Watched<'a, E> {
    inner: &'a E,
    lost: CancellationToken,
    first: Mutex<Option<EngineError>>,
}

impl<'a, E: Engine> Watched<'a, E> {
    /// Watch `inner`; `lost` is cancelled at the first error that means the engine is gone.
    pub fn new(inner: &'a E, lost: CancellationToken) -> Self {
        Self {
            inner,
            lost,
            first: Mutex::new(None),
        }
    }

    /// The first error that meant the engine was gone, if any.
    pub fn lost(&self) -> Option<EngineError> {
        self.first
            .lock()
            .expect("the lock is never held across a panic")
            .clone()
    }

    fn note<T>(&self, result: Result<T, EngineError>) -> Result<T, EngineError> {
        if let Err(e) = &result
            && e.is_gone()
        {
            let mut first = self
                .first
                .lock()
                .expect("the lock is never held across a panic");
            if first.is_none() {
                tracing::warn!(error = %e, "docker went away during the pass: starting no new deletions");
                *first = Some(e.clone());
            }
            self.lost.cancel();
        }
        result
    }
}

impl<E: Engine> Engine for Watched<'_, E> {
    async fn ping(&self) -> Result<(), EngineError> {
        self.note(self.inner.ping().await)
    }

    async fn list_images(&self) -> Result<Vec<Image>, EngineError> {
        self.note(self.inner.list_images().await)
    }

    async fn info(&self) -> Result<EngineInfo, EngineError> {
        self.note(self.inner.info().await)
    }

    async fn inspect_image(&self, name: &str) -> Result<ImageState, EngineError> {
        self.note(self.inner.inspect_image(name).await)
    }

    async fn list_containers(&self) -> Result<Vec<Container>, EngineError> {
        self.note(self.inner.list_containers().await)
    }

    async fn remove_image(&self, name: &str) -> Result<RemoveReport, EngineError> {
        self.note(self.inner.remove_image(name).await)
    }

    fn deletes_parents(&self) -> bool {
        self.inner.deletes_parents()
    }

    fn refuses_parents_with_children(&self) -> bool {
        self.inner.refuses_parents_with_children()
    }

    async fn data_usage(&self) -> Result<DataUsage, EngineError> {
        self.note(self.inner.data_usage().await)
    }

    async fn prune_build_cache(
        &self,
        request: &CachePrune,
    ) -> Result<CachePruneReport, EngineError> {
        self.note(self.inner.prune_build_cache(request).await)
    }

    /// Passed through unwatched: a pass's deletions never read events.
    fn events(&self, since: Option<i64>, until: Option<i64>) -> EventStream {
        self.inner.events(since, until)
    }

    fn is_remote(&self) -> bool {
        self.inner.is_remote()
    }

    fn describe(&self) -> String {
        self.inner.describe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::fake::{FakeEngine, image};

    #[tokio::test]
    async fn refusals_pass_through_and_the_first_loss_is_kept() {
        let fake = FakeEngine::builder().image(image("a").tag("a:1")).build();
        let lost = CancellationToken::new();
        let watched = Watched::new(&fake, lost.clone());
        assert!(matches!(
            watched.remove_image("nope:1").await,
            Err(EngineError::NotFound(_))
        ));
        assert!(!lost.is_cancelled(), "a 404 is not a lost engine");
        fake.set_unreachable(true);
        let first = watched.list_images().await.expect_err("unreachable");
        assert!(lost.is_cancelled());
        let _ = watched.ping().await;
        assert_eq!(watched.lost(), Some(first));
    }
}
