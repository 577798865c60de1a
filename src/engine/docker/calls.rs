//! The [`Engine`] calls on a connected [`DockerEngine`]: each one bounded and classified by
//! [`DockerEngine::call`], its answer mapped to plain values by [`super::convert`].

use bollard::errors::Error as BollardError;
use bollard::query_parameters::{ListContainersOptionsBuilder, RemoveImageOptionsBuilder};

use super::connect::DockerEngine;
use super::convert::{to_container, to_engine_info, to_image_state, to_remove_report};
use super::{listing, raw};
use crate::engine::{
    CachePrune, CachePruneReport, DataUsage, Engine, EngineError, EngineInfo, EngineKind,
    EventStream, ImageState, RemoveReport,
};
use crate::inventory::{Container, Image};

impl Engine for DockerEngine {
    async fn ping(&self) -> Result<(), EngineError> {
        self.call("ping", self.docker.ping()).await.map(drop)
    }

    async fn list_images(&self) -> Result<Vec<Image>, EngineError> {
        const WHAT: &str = "list images";
        let _one_at_a_time = self.listing_lock.lock().await;
        let path = listing::path(raw::ApiVersion::of(&self.docker));
        let read = async {
            use futures_util::TryStreamExt as _;
            let mut answer = std::pin::pin!(raw::get_stream(&self.docker, &path));
            let mut reader = listing::Reader::default();
            while let Some(chunk) = answer.try_next().await? {
                if let Err(e) = reader.feed(&chunk) {
                    return Ok(Err(e));
                }
            }
            Ok::<_, BollardError>(reader.finish())
        };
        self.call(WHAT, read).await?.map_err(|e| match e {
            listing::Unreadable::Image(e) => e,
            listing::Unreadable::Text(cause) => EngineError::Garbled {
                host: self.host.clone(),
                what: WHAT.to_owned(),
                cause: format!("not the JSON expected: {cause}"),
            },
        })
    }

    async fn info(&self) -> Result<EngineInfo, EngineError> {
        let info = self.call("read engine info", self.docker.info()).await?;
        Ok(EngineInfo {
            kind: self.kind,
            remote: self.is_remote().then(|| self.host.clone()),
            ..to_engine_info(info)
        })
    }

    async fn inspect_image(&self, name: &str) -> Result<ImageState, EngineError> {
        let what = format!("inspect image {name}");
        let inspect = self.call(&what, self.docker.inspect_image(name)).await?;
        to_image_state(name, inspect)
    }

    async fn list_containers(&self) -> Result<Vec<Container>, EngineError> {
        let opts = ListContainersOptionsBuilder::new().all(true).build();
        let summaries = self
            .call("list containers", self.docker.list_containers(Some(opts)))
            .await?;
        summaries
            .into_iter()
            .filter_map(|s| to_container(s).transpose())
            .collect()
    }

    async fn remove_image(&self, name: &str) -> Result<RemoveReport, EngineError> {
        // `platforms` stays unset: bollard 0.21 fails to serialize its Vec.
        let opts = RemoveImageOptionsBuilder::new()
            .force(false)
            .noprune(true)
            .build();
        let what = format!("remove image {name}");
        let items = self
            .call(&what, self.docker.remove_image(name, Some(opts), None))
            .await?;
        Ok(to_remove_report(items))
    }

    /// Docker honours `noprune`; Podman 4 deletes untagged parents left childless anyway.
    fn deletes_parents(&self) -> bool {
        self.kind == EngineKind::Podman
    }

    fn events(&self, since: Option<i64>, until: Option<i64>) -> EventStream {
        self.event_stream(since, until)
    }

    async fn data_usage(&self) -> Result<DataUsage, EngineError> {
        self.read_data_usage().await
    }

    async fn prune_build_cache(
        &self,
        request: &CachePrune,
    ) -> Result<CachePruneReport, EngineError> {
        self.prune_one_record(request).await
    }

    fn is_remote(&self) -> bool {
        ["tcp://", "http://", "https://"]
            .iter()
            .any(|scheme| self.host.starts_with(scheme))
    }

    fn describe(&self) -> String {
        let v = self.docker.client_version();
        let via = self
            .context
            .as_ref()
            .map_or_else(String::new, |c| format!(", context {c}"));
        format!(
            "{} at {} (api {}.{}{via})",
            self.kind, self.host, v.major_version, v.minor_version
        )
    }
}
