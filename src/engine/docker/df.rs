//! `GET /system/df` on the negotiated API version, read in every shape the engine answers
//! with: the legacy lists (`Images`, `BuildCache`; `Parent` before API 1.42, `Parents` since, spelled `" Parents"` by Docker)
//! and API 1.52's `ImageUsage`/`BuildCacheUsage` with their `Items` (`verbose=1`; API 1.53
//! drops the legacy lists).

use std::borrow::Cow;

use serde::Deserialize;

use super::connect::DockerEngine;
use super::raw::{self, ApiVersion};
use super::retry;
use crate::engine::{DataUsage, EngineError};
use crate::inventory::ImageId;
use crate::inventory::{CacheRecord, CacheType};

/// The request for `api`: only images and build cache where the engine can be told (API
/// 1.42+; older engines ignore `type` and compute everything), their items on 1.52+.
pub(super) fn path(api: ApiVersion) -> String {
    let mut path = format!("{}/system/df", api.prefix());
    if api >= ApiVersion::v1(42) {
        path.push_str("?type=image&type=build-cache");
    }
    if api >= ApiVersion::v1(52) {
        path.push_str("&verbose=1");
    }
    path
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Answer<'a> {
    #[serde(borrow)]
    images: Option<Vec<DfImage<'a>>>,
    /// Absent: the engine keeps no build cache it can report. `null`: Docker with an empty
    /// one (a daemon that has not run a BuildKit build yet answers `"BuildCache": null`).
    #[serde(default, deserialize_with = "null_is_empty")]
    build_cache: Option<Vec<DfRecord>>,
    #[serde(borrow)]
    image_usage: Option<Usage<DfImage<'a>>>,
    build_cache_usage: Option<Usage<DfRecord>>,
    /// The bytes of every image layer, counted once (the legacy field, and 1.52's
    /// `ImageUsage.TotalSize`).
    layers_size: Option<i64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Usage<T> {
    items: Option<Vec<T>>,
    total_size: Option<i64>,
}

#[derive(Deserialize)]
struct DfImage<'a> {
    /// Borrowed from the answer: a pass reads one per image, and only to parse it.
    #[serde(rename = "Id", borrow)]
    id: Cow<'a, str>,
    /// -1 when the engine did not compute it.
    #[serde(rename = "SharedSize", default = "minus_one")]
    shared_size: i64,
}

/// A list that is there, `null` read as empty (a missing one stays `None`, by `default`).
fn null_is_empty<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Vec<T>>, D::Error> {
    Option::<Vec<T>>::deserialize(d).map(|list| Some(list.unwrap_or_default()))
}

const fn minus_one() -> i64 {
    -1
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DfRecord {
    #[serde(rename = "ID")]
    id: String,
    parent: Option<String>,
    /// Docker spells the key `" Parents"` (a leading space in moby's JSON tag) in the legacy
    /// list, checked on 28.5 (API 1.51); `Parents` in the 1.52 `BuildCacheUsage` items.
    #[serde(alias = " Parents")]
    parents: Option<Vec<String>>,
    #[serde(rename = "Type")]
    kind: Option<String>,
    description: Option<String>,
    in_use: Option<bool>,
    shared: Option<bool>,
    size: Option<i64>,
    created_at: Option<String>,
    last_used_at: Option<String>,
    usage_count: Option<i64>,
}

/// Read a disk usage answer of any API version.
pub(super) fn parse(body: impl AsRef<[u8]>) -> Result<DataUsage, EngineError> {
    let answer: Answer = serde_json::from_slice(body.as_ref()).map_err(|e| {
        EngineError::Other(format!(
            "docker answered GET /system/df with something that is not disk usage ({e}); \
             is this a Docker-compatible engine?"
        ))
    })?;
    let (usage_items, usage_total) = answer
        .image_usage
        .map_or((None, None), |u| (u.items, u.total_size));
    let layers = usage_total.or(answer.layers_size);
    let images = usage_items.or(answer.images).unwrap_or_default();
    // Podman answers `LayersSize: 0` whatever it holds: 0 beside images is "not told".
    let layers_size = layers
        .and_then(|n| u64::try_from(n).ok())
        .filter(|&n| n > 0 || images.is_empty());
    let mut shared_sizes = Vec::with_capacity(images.len());
    for image in images {
        let Ok(id) = image.id.parse::<ImageId>() else {
            return Err(EngineError::Other(format!(
                "docker listed an image with a malformed ID {:?} in its disk usage \
                 (expected sha256:<64 hex digits>); is this a Docker-compatible engine?",
                image.id
            )));
        };
        if let Ok(bytes) = u64::try_from(image.shared_size) {
            shared_sizes.push((id, bytes));
        }
    }
    let records = (answer.build_cache_usage.and_then(|u| u.items)).or(answer.build_cache);
    Ok(DataUsage {
        shared_sizes,
        build_cache: records.map(|rs| rs.into_iter().map(record).collect()),
        layers_size,
    })
}

fn record(r: DfRecord) -> CacheRecord {
    let mut parents = r.parents.unwrap_or_default();
    if let Some(p) = r.parent.filter(|p| !p.is_empty() && !parents.contains(p)) {
        parents.push(p);
    }
    parents.retain(|p| !p.is_empty());
    CacheRecord {
        id: r.id,
        parents,
        kind: CacheType::from_engine(r.kind.as_deref().unwrap_or_default()),
        description: r.description.unwrap_or_default(),
        size: r.size.and_then(|s| u64::try_from(s).ok()).unwrap_or(0),
        created: super::convert::engine_time(r.created_at.as_deref()).filter(|t| t.timestamp() > 0),
        last_used: super::convert::engine_time(r.last_used_at.as_deref())
            .filter(|t| t.timestamp() > 0),
        usage_count: r
            .usage_count
            .and_then(|n| u64::try_from(n).ok())
            .unwrap_or(0),
        shared: r.shared.unwrap_or(false),
        in_use: r.in_use.unwrap_or(false),
    }
}

impl DockerEngine {
    /// `GET /system/df`, one at a time from this process, tried again while the answer is
    /// transient ([`retry::disk_usage_is_transient`]).
    pub(super) async fn read_data_usage(&self) -> Result<DataUsage, EngineError> {
        let _one_at_a_time = self.df_lock.lock().await;
        let path = path(ApiVersion::of(&self.docker));
        let answer = retry::retried("read disk usage", retry::disk_usage_is_transient, || {
            self.call("read disk usage", raw::get_bytes(&self.docker, &path))
        });
        parse(&answer.await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const B: &str = "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

    #[test]
    fn the_request_follows_the_api_version() {
        assert_eq!(path(ApiVersion::v1(41)), "/v1.41/system/df");
        assert_eq!(
            path(ApiVersion::v1(44)),
            "/v1.44/system/df?type=image&type=build-cache"
        );
        assert_eq!(
            path(ApiVersion::v1(48)),
            "/v1.48/system/df?type=image&type=build-cache"
        );
        assert_eq!(
            path(ApiVersion::v1(52)),
            "/v1.52/system/df?type=image&type=build-cache&verbose=1"
        );
    }

    /// API 1.41 (Docker 20.10), as seen here: `Parent` strings, `SharedSize` per image.
    #[test]
    fn reads_the_1_41_shape() {
        let body = format!(
            r#"{{"LayersSize": 10, "Images": [
                {{"Id": "{A}", "ParentId": "", "SharedSize": 1982256, "Size": 2506544}},
                {{"Id": "{B}", "SharedSize": -1, "Size": 5}}],
              "Containers": [], "Volumes": [],
              "BuildCache": [
                {{"ID": "uf12l0ts3vv6bpgrorhfktszx", "Parent": "hescy2zdq0oxgpqd73i84nrns",
                  "Type": "regular", "Description": "mount / from exec /bin/sh -c make",
                  "InUse": false, "Shared": false, "Size": 6,
                  "CreatedAt": "2026-11-29T14:07:53.446867103Z",
                  "LastUsedAt": "2026-11-29T14:07:53.876004057Z", "UsageCount": 1}},
                {{"ID": "hdct3fh1b3sw9ylz0db26voas", "Parent": "", "Type": "exec.cachemount",
                  "Description": "cached mount /cache", "InUse": true, "Shared": true,
                  "Size": 7, "CreatedAt": "2026-11-29T14:07:53Z", "LastUsedAt": null,
                  "UsageCount": 0}}]}}"#
        );
        let du = parse(&body).unwrap();
        assert_eq!(du.shared_sizes, vec![(A.parse().unwrap(), 1_982_256)]);
        assert_eq!(du.layers_size, Some(10));
        let records = du.build_cache.unwrap();
        assert_eq!(records.len(), 2);
        let r = &records[0];
        assert_eq!(r.parents, vec!["hescy2zdq0oxgpqd73i84nrns".to_owned()]);
        assert_eq!(
            (r.kind.clone(), r.size, r.usage_count),
            (CacheType::Regular, 6, 1)
        );
        assert_eq!(r.last_used.map(|t| t.timestamp()), Some(1_795_961_273));
        let m = &records[1];
        assert!(m.parents.is_empty() && m.in_use && m.shared);
        assert_eq!(m.kind, CacheType::ExecCachemount);
        assert_eq!(m.last_used, None);
        assert_eq!(m.last_touched(), m.created);
    }

    /// API 1.44 and 1.48: the legacy lists with `Parents` (and no `Parent`).
    #[test]
    fn reads_the_1_44_and_1_48_shape() {
        let body = format!(
            r#"{{"Images": [{{"Id": "{A}", "SharedSize": 0}}],
              "BuildCache": [{{"ID": "r1", "Parents": ["p1", "p2"], "Type": "source.local",
                "Size": 100, "LastUsedAt": "2026-01-01T00:00:00Z"}}]}}"#
        );
        let du = parse(&body).unwrap();
        assert_eq!(du.shared_sizes, vec![(A.parse().unwrap(), 0)]);
        assert_eq!(du.layers_size, None, "not told");
        let records = du.build_cache.unwrap();
        assert_eq!(records[0].parents, ["p1", "p2"]);
        assert_eq!(records[0].kind, CacheType::SourceLocal);
    }

    /// Docker 28.5 (API 1.51) as it answers: the key is `" Parents"`, with a leading space.
    #[test]
    fn reads_parents_under_the_key_docker_28_sends() {
        let body = r#"{"LayersSize": 0, "Images": [], "BuildCache": [
            {"ID": "c", " Parents": ["p"], "Type": "regular", "Shared": true, "Size": 8192},
            {"ID": "p", "Type": "regular", "Size": 1}]}"#;
        let records = parse(body).unwrap().build_cache.unwrap();
        assert_eq!(records[0].parents, ["p"]);
        assert!(records[1].parents.is_empty());
    }

    /// API 1.52 with `verbose=1`: `ImageUsage.Items` and `BuildCacheUsage.Items`.
    #[test]
    fn reads_the_1_52_shape() {
        let body = format!(
            r#"{{"ImageUsage": {{"ActiveCount": 1, "TotalCount": 1, "Reclaimable": 0,
                  "TotalSize": 10, "Items": [{{"Id": "{B}", "SharedSize": 4}}]}},
              "BuildCacheUsage": {{"ActiveCount": 1, "TotalCount": 2, "Reclaimable": 3,
                  "TotalSize": 9, "Items": [
                  {{"ID": "x", "Parents": [], "Type": "frontend", "InUse": true, "Size": 9}},
                  {{"ID": "y", "Type": "source.git.checkout"}}]}}}}"#
        );
        let du = parse(&body).unwrap();
        assert_eq!(du.shared_sizes, vec![(B.parse().unwrap(), 4)]);
        assert_eq!(du.layers_size, Some(10), "ImageUsage.TotalSize");
        let records = du.build_cache.unwrap();
        let kinds: Vec<_> = records.iter().map(|r| r.kind.clone()).collect();
        assert_eq!(kinds, [CacheType::Frontend, CacheType::SourceGitCheckout]);
        assert!(records[0].in_use);
        assert_eq!(records[1].created, None);
    }

    #[test]
    fn no_build_cache_section_is_none_null_is_empty_and_garbage_is_an_error() {
        let podman =
            r#"{"LayersSize": 0, "Images": [], "Containers": [], "Volumes": [], "BuildCache": []}"#;
        assert_eq!(parse(podman).unwrap().build_cache, Some(Vec::new()));
        assert_eq!(
            parse(podman).unwrap().layers_size,
            Some(0),
            "no images: 0 is true"
        );
        let podman_with_images = format!(r#"{{"LayersSize": 0, "Images": [{{"Id": "{A}"}}]}}"#);
        assert_eq!(parse(&podman_with_images).unwrap().layers_size, None);
        let bare = r#"{"LayersSize": 0, "Images": []}"#;
        assert_eq!(parse(bare).unwrap().build_cache, None);
        // Docker 20.10 before its first BuildKit build: an empty cache, not "no cache".
        let fresh = r#"{"LayersSize": 0, "Images": [], "BuildCache": null, "BuilderSize": 0}"#;
        assert_eq!(parse(fresh).unwrap().build_cache, Some(Vec::new()));
        let e = parse("OK").unwrap_err();
        assert!(e.to_string().contains("GET /system/df"), "{e}");
        let e = parse(r#"{"Images": [{"Id": "nope", "SharedSize": 1}]}"#).unwrap_err();
        assert!(e.to_string().contains("\"nope\""), "{e}");
    }
}
