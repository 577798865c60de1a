//! The [`Engine`] calls of the fake, answered from its state as the daemon would.

use chrono::Utc;

use super::builders::FAKE_ENGINE_ID;
use super::engine::{FakeEngine, InFlight};
use super::world::{Call, RemoveCall};
use super::{build_cache, daemon};
use crate::engine::{
    CachePrune, CachePruneReport, DataUsage, Engine, EngineError, EngineInfo, EngineKind,
    EventStream, ImageState, RemoveReport,
};
use crate::inventory::{Container, Image, ImageId};

impl Engine for FakeEngine {
    async fn ping(&self) -> Result<(), EngineError> {
        self.begin(Call::Info).map(drop)
    }

    async fn info(&self) -> Result<EngineInfo, EngineError> {
        let st = self.begin(Call::Info)?;
        Ok(EngineInfo {
            id: FAKE_ENGINE_ID.to_owned(),
            kind: EngineKind::Docker,
            name: "fake".to_owned(),
            server_version: "0.0.0-fake".to_owned(),
            system_time: st.clock,
            root_dir: st.root_dir.clone(),
            image_store: st.image_store.clone(),
            remote: st.remote.clone(),
        })
    }

    async fn inspect_image(&self, name: &str) -> Result<ImageState, EngineError> {
        let st = self.begin(Call::Inspect(name))?;
        let image = daemon::resolve(&st.world.images, name)?;
        Ok(ImageState {
            id: image.id,
            references: image.references.clone(),
            digests: image.digests.clone(),
            created: Some(image.created),
            last_tagged: image.last_tagged,
        })
    }

    /// Like the daemon's listing, without tag times (only inspect tells them).
    async fn list_images(&self) -> Result<Vec<Image>, EngineError> {
        let st = self.begin(Call::ListImages)?;
        let listed = st.world.images.iter().map(|i| Image {
            last_tagged: None,
            ..i.clone()
        });
        Ok(listed.collect())
    }

    async fn list_containers(&self) -> Result<Vec<Container>, EngineError> {
        Ok(self.begin(Call::ListContainers)?.world.containers.clone())
    }

    async fn remove_image(&self, name: &str) -> Result<RemoveReport, EngineError> {
        {
            let mut st = self.begin(Call::Remove(name))?;
            st.in_flight += 1;
            st.max_in_flight = st.max_in_flight.max(st.in_flight);
        }
        let guard = InFlight(self);
        if self.delay.is_zero() {
            tokio::task::yield_now().await;
        } else {
            tokio::time::sleep(self.delay).await;
        }
        let mut guard_state = self.lock();
        let st = &mut *guard_state;
        let before: Vec<ImageId> = st.world.images.iter().map(|i| i.id).collect();
        let rules = st.rules;
        let result = match st.answers.get(name) {
            Some(answer) => answer.clone(),
            None if rules.deletes_parents => {
                daemon::remove_with_parents(&mut st.world, name, rules)
            }
            None => daemon::remove(&mut st.world, name, rules),
        };
        let world = &st.world;
        let gone = before
            .into_iter()
            .filter(|id| !world.images.iter().any(|i| i.id == *id));
        let gone: Vec<ImageId> = gone.collect();
        let unshared: Vec<String> = (st.holds_layers_of.iter())
            .filter(|(_, image)| gone.contains(image))
            .map(|(record, _)| record.clone())
            .collect();
        for r in st.cache.iter_mut().flatten() {
            if unshared.contains(&r.id) {
                r.shared = false;
            }
        }
        st.deleted.extend(gone);
        st.calls.push(RemoveCall {
            name: name.to_owned(),
            ok: result.is_ok(),
        });
        drop(guard_state);
        drop(guard);
        result
    }

    fn deletes_parents(&self) -> bool {
        self.lock().rules.deletes_parents
    }

    fn refuses_parents_with_children(&self) -> bool {
        self.lock().rules.children_refuse
    }

    fn events(&self, since: Option<i64>, until: Option<i64>) -> EventStream {
        use futures_util::StreamExt as _;
        let mut st = self.lock();
        if st.unreachable {
            let e = EngineError::Unreachable {
                host: "fake://engine".to_owned(),
                cause: "connection refused".to_owned(),
                hint: "wrong DOCKER_HOST?".to_owned(),
            };
            return futures_util::stream::iter([Err(e)]).boxed();
        }
        // Like the daemon: `since` after `until` is a bad request.
        if let (Some(s), Some(u)) = (since, until)
            && s > u
        {
            let e = EngineError::Other("400 Bad Request: since must be before until".to_owned());
            return futures_util::stream::iter([Err(e)]).boxed();
        }
        let live = until.is_none().then(|| {
            st.live
                .get_or_insert_with(|| tokio::sync::broadcast::channel(1024).0)
                .subscribe()
        });
        // Like the daemon: without `since`, no replay.
        let replay: Vec<_> = st
            .events
            .iter()
            .filter(|e| since.is_some_and(|s| e.time_nano >= s))
            .filter(|e| until.is_none_or(|u| e.time_nano <= u))
            .cloned()
            .map(Ok)
            .collect();
        drop(st);
        let replay = futures_util::stream::iter(replay);
        match live {
            None => replay.boxed(),
            Some(rx) => {
                let live = futures_util::stream::unfold(rx, |mut rx| async move {
                    loop {
                        match rx.recv().await {
                            Ok(e) => return Some((Ok(e), rx)),
                            Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                            Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
                        }
                    }
                });
                replay.chain(live).boxed()
            }
        }
    }

    async fn data_usage(&self) -> Result<DataUsage, EngineError> {
        if !self.data_usage_delay.is_zero() {
            tokio::time::sleep(self.data_usage_delay).await;
        }
        let st = self.begin(Call::DiskUsage)?;
        Ok(DataUsage {
            shared_sizes: (st.world.images.iter())
                .filter_map(|i| i.shared_size.map(|s| (i.id, s)))
                .collect(),
            build_cache: st.cache.clone(),
            // The fake keeps no layers: its images' layers total is not told.
            layers_size: None,
        })
    }

    async fn prune_build_cache(
        &self,
        request: &CachePrune,
    ) -> Result<CachePruneReport, EngineError> {
        tokio::task::yield_now().await;
        let mut st = self.begin(Call::PruneBuildCache)?;
        st.cache_calls.push(request.clone());
        if st.no_prune_api {
            return Err(EngineError::NotFound("page not found".to_owned()));
        }
        let now = st.clock.unwrap_or_else(Utc::now);
        let records = st.cache.get_or_insert_with(Vec::new);
        Ok(build_cache::prune(records, request, now))
    }

    fn describe(&self) -> String {
        "fake engine".to_owned()
    }
}
