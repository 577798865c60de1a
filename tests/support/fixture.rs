//! Test images with chosen labels, tags, sizes and `Created` times, written as a
//! docker-archive (`docker save` format) and loaded through `POST /images/load`.
//!
//! Each image gets its own layer of random bytes, so deleting it frees real space and no two
//! fixtures share a layer unless one is built on another (`parent`, or `on` without a parent
//! link). Several images go into one archive and one load call.

use stagesweep::inventory::Labels;

use bollard::Docker;
use bollard::query_parameters::ImportImageOptionsBuilder;
use chrono::{DateTime, SecondsFormat, Utc};
use futures_util::TryStreamExt;
use rand::RngCore;
use serde_json::json;
use sha2::{Digest, Sha256};

/// One image to build.
#[derive(Debug, Clone)]
pub struct FixtureImage {
    pub tags: Vec<String>,
    pub labels: Labels,
    pub created: DateTime<Utc>,
    /// Bytes of random content in the image's own layer.
    pub layer_bytes: usize,
    /// Index of an earlier image in the same archive to use as parent (its layers come first).
    pub parent: Option<usize>,
    /// Index of an earlier image whose layers come first, without becoming the parent (as
    /// with images built by BuildKit, pulled or loaded on a shared base).
    pub base: Option<usize>,
}

impl FixtureImage {
    /// An untagged image with the test's label, created at `created`, with a 1 KiB layer.
    pub fn new(label: &(String, String), created: DateTime<Utc>) -> Self {
        Self {
            tags: Vec::new(),
            labels: Labels::from([label.clone()]),
            created,
            layer_bytes: 1024,
            parent: None,
            base: None,
        }
    }
    pub fn tag(mut self, tag: &str) -> Self {
        self.tags.push(tag.to_owned());
        self
    }
    pub fn label(mut self, key: &str, value: &str) -> Self {
        self.labels.insert(key, value);
        self
    }
    pub fn layer_bytes(mut self, bytes: usize) -> Self {
        self.layer_bytes = bytes;
        self
    }
    pub fn parent(mut self, index: usize) -> Self {
        self.parent = Some(index);
        self
    }
    /// Share the layers of image `index` without a parent link.
    pub fn on(mut self, index: usize) -> Self {
        self.base = Some(index);
        self
    }
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    digest.iter().fold(String::with_capacity(64), |mut s, b| {
        use std::fmt::Write as _;
        write!(s, "{b:02x}").expect("writing to a String cannot fail");
        s
    })
}

/// A layer tarball holding one file of `bytes` random bytes (never empty, so always unique).
fn layer_tar(bytes: usize) -> Vec<u8> {
    let mut content = vec![0u8; bytes.max(16)];
    rand::rng().fill_bytes(&mut content);
    let mut builder = tar::Builder::new(Vec::new());
    append(&mut builder, "fixture.bin", &content);
    builder
        .into_inner()
        .expect("finishing an in-memory tar cannot fail")
}

fn append(archive: &mut tar::Builder<Vec<u8>>, path: &str, data: &[u8]) {
    let mut header = tar::Header::new_gnu();
    header.set_size(data.len() as u64);
    header.set_mode(0o644);
    header.set_mtime(0);
    header.set_cksum();
    archive
        .append_data(&mut header, path, data)
        .expect("appending to an in-memory tar cannot fail");
}

/// Write the docker-archive for `images`; returns it and the image IDs (`sha256:` + config digest).
pub fn archive(images: &[FixtureImage]) -> (Vec<u8>, Vec<String>) {
    let (tarball, ids, _) = archive_with_layers(images);
    (tarball, ids)
}

/// [`archive`], and each image's layers (`rootfs.diff_ids`, unique to each image).
fn archive_with_layers(images: &[FixtureImage]) -> (Vec<u8>, Vec<String>, Vec<Vec<String>>) {
    let mut out = tar::Builder::new(Vec::new());
    let mut manifest = Vec::new();
    let mut ids: Vec<String> = Vec::new();
    // Per image: (diff_ids, layer paths, history), so children extend their parent's; the
    // daemon accepts a `Parent` only when the child's history is the parent's plus one entry.
    let mut chains: Vec<(Vec<String>, Vec<String>, Vec<serde_json::Value>)> = Vec::new();
    for (i, img) in images.iter().enumerate() {
        let (mut diff_ids, mut paths, mut history) = match img.parent.or(img.base) {
            Some(p) => {
                assert!(
                    p < i,
                    "fixture parent or base {p} must come before image {i}"
                );
                chains[p].clone()
            }
            None => (Vec::new(), Vec::new(), Vec::new()),
        };
        let layer = layer_tar(img.layer_bytes);
        let diff = sha256_hex(&layer);
        append(&mut out, &format!("{diff}/layer.tar"), &layer);
        diff_ids.push(format!("sha256:{diff}"));
        paths.push(format!("{diff}/layer.tar"));
        let created = img.created.to_rfc3339_opts(SecondsFormat::Secs, true);
        history.push(json!({ "created": created }));
        let config = json!({
            "architecture": "amd64",
            "os": "linux",
            "created": created,
            "config": { "Labels": img.labels, "Cmd": ["/fixture"] },
            "rootfs": { "type": "layers", "diff_ids": diff_ids },
            "history": history,
        });
        let config = serde_json::to_vec(&config).expect("a json value always serializes");
        let config_hex = sha256_hex(&config);
        append(&mut out, &format!("{config_hex}.json"), &config);
        let mut entry = json!({
            "Config": format!("{config_hex}.json"),
            "RepoTags": img.tags,
            "Layers": paths,
        });
        if let Some(p) = img.parent {
            entry["Parent"] = json!(ids[p]);
        }
        manifest.push(entry);
        ids.push(format!("sha256:{config_hex}"));
        chains.push((diff_ids, paths, history));
    }
    let manifest = serde_json::to_vec(&manifest).expect("a json value always serializes");
    append(&mut out, "manifest.json", &manifest);
    (
        out.into_inner()
            .expect("finishing an in-memory tar cannot fail"),
        ids,
        chains
            .into_iter()
            .map(|(diff_ids, _, _)| diff_ids)
            .collect(),
    )
}

/// The image config and the (uncompressed) layer of a single-layer image, as a registry
/// serves them; `parent` is ignored.
pub fn image_blobs(img: &FixtureImage) -> (Vec<u8>, Vec<u8>) {
    let layer = layer_tar(img.layer_bytes);
    let created = img.created.to_rfc3339_opts(SecondsFormat::Secs, true);
    let config = json!({
        "architecture": "amd64",
        "os": "linux",
        "created": created,
        "config": { "Labels": img.labels, "Cmd": ["/fixture"] },
        "rootfs": { "type": "layers", "diff_ids": [format!("sha256:{}", sha256_hex(&layer))] },
        "history": [{ "created": created }],
    });
    let config = serde_json::to_vec(&config).expect("a json value always serializes");
    (config, layer)
}

/// `days` days before now, on the host's clock (for a fixture's `Created`).
pub fn days_ago(days: i64) -> DateTime<Utc> {
    Utc::now() - chrono::Duration::days(days)
}

/// Build `images` into one archive and load it with one call; returns their IDs, in order,
/// as the engine names them: the config digest, except on the containerd image store, whose
/// image IDs are manifest digests that the engine computes (found there by each image's
/// layers, which are its own).
pub async fn load(docker: &Docker, images: &[FixtureImage]) -> Vec<String> {
    let (tarball, ids, layers) = archive_with_layers(images);
    let opts = ImportImageOptionsBuilder::new().quiet(true).build();
    docker
        .import_image(opts, bollard::body_full(tarball.into()), None)
        .try_collect::<Vec<_>>()
        .await
        .expect("loading the fixture archive");
    match ids.first() {
        Some(first) if docker.inspect_image(first).await.is_err() => {
            ids_by_layers(docker, images, &layers).await
        }
        _ => ids,
    }
}

/// The IDs of the loaded `images`, found by their layers (`RootFS.Layers`) among the images
/// listed with exactly their labels.
async fn ids_by_layers(
    docker: &Docker,
    images: &[FixtureImage],
    layers: &[Vec<String>],
) -> Vec<String> {
    let opts = bollard::query_parameters::ListImagesOptionsBuilder::new()
        .all(true)
        .build();
    // Tried again while another client's deletion gets in the way (the containerd image
    // store answers 404 "content digest … not found", Podman 4.3 "image not known"); this
    // file is self-contained (benches/engine_tool uses it too), hence not `list_images`.
    let mut attempt = 0;
    let listed = loop {
        match docker.list_images(Some(opts.clone())).await {
            Ok(listed) => break listed,
            Err(bollard::errors::Error::DockerResponseServerError { message, .. })
                if attempt < 5
                    && (message.contains("content digest")
                        || message.contains("image not known")) =>
            {
                attempt += 1;
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            }
            Err(e) => panic!("listing the loaded fixtures: {e}"),
        }
    };
    let labelled = |summary: &bollard::models::ImageSummary| {
        images.iter().any(|i| {
            i.labels.len() == summary.labels.len()
                && (summary.labels.iter()).all(|(k, v)| i.labels.get(k) == Some(v.as_str()))
        })
    };
    let mut by_layers = std::collections::HashMap::new();
    for summary in listed.iter().filter(|s| labelled(s)) {
        let inspect = docker
            .inspect_image(&summary.id)
            .await
            .expect("inspecting a loaded fixture");
        let rootfs = inspect.root_fs.and_then(|r| r.layers).unwrap_or_default();
        by_layers.insert(rootfs, summary.id.clone());
    }
    layers
        .iter()
        .map(|l| {
            by_layers
                .get(l)
                .cloned()
                .unwrap_or_else(|| panic!("no image has the layers {l:?} after the load"))
        })
        .collect()
}

/// [`load`] `images` in archives of `batch` images each (one load call per archive).
pub async fn load_batched(docker: &Docker, images: &[FixtureImage], batch: usize) -> Vec<String> {
    let mut ids = Vec::with_capacity(images.len());
    for chunk in images.chunks(batch) {
        ids.extend(load(docker, chunk).await);
    }
    ids
}
