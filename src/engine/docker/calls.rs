//! The [`Engine`] calls on a connected [`DockerEngine`]: each one bounded and classified by
//! [`DockerEngine::call`], its answer mapped to plain values by [`super::convert`].

use bollard::errors::Error as BollardError;
use bollard::query_parameters::{ListContainersOptionsBuilder, RemoveImageOptionsBuilder};

use super::connect::DockerEngine;
use super::convert::{to_container, to_engine_info, to_image_state, to_remove_report};
use super::{listing, podman, raw, retry};
use crate::engine::{
    CachePrune, CachePruneReport, DataUsage, Engine, EngineError, EngineInfo, EngineKind,
    EventStream, ImageState, ImageStore, RemoveReport,
};
use crate::inventory::{Container, Image};

impl Engine for DockerEngine {
    async fn ping(&self) -> Result<(), EngineError> {
        self.call("ping", self.docker.ping()).await.map(drop)
    }

    /// Tried again while the answer is transient ([`retry::listing_is_transient`]: an image
    /// deleted while the engine listed it).
    async fn list_images(&self) -> Result<Vec<Image>, EngineError> {
        let _one_at_a_time = self.listing_lock.lock().await;
        retry::retried("list images", retry::listing_is_transient, || {
            self.list_images_once()
        })
        .await
    }

    /// On Podman, `id` is [`podman::stable_id`]: its own changes from call to call.
    async fn info(&self) -> Result<EngineInfo, EngineError> {
        let info = self.call("read engine info", self.docker.info()).await?;
        let mut info = EngineInfo {
            kind: self.kind,
            remote: self.is_remote().then(|| self.host.clone()),
            ..to_engine_info(info)
        };
        if self.kind == EngineKind::Podman {
            info.id = podman::stable_id(&info);
        }
        Ok(info)
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

    /// Docker honours `noprune` (on both image stores, checked on 28.5), and so does Podman
    /// 5; Podman 4 deletes untagged parents left childless anyway.
    fn deletes_parents(&self) -> bool {
        self.kind == EngineKind::Podman && podman::deletes_parents(&self.server_version)
    }

    /// Docker on a graph driver answers 409 "image has dependent child images"; on the
    /// containerd image store it deletes the parent (checked on 28.5), as Podman does.
    fn refuses_parents_with_children(&self) -> bool {
        self.kind == EngineKind::Docker
            && matches!(self.image_store, Some(ImageStore::Graphdriver(_)))
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

impl DockerEngine {
    /// `GET /images/json?all=true` once, read as it arrives ([`listing::Reader`]).
    async fn list_images_once(&self) -> Result<Vec<Image>, EngineError> {
        const WHAT: &str = "list images";
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
}
