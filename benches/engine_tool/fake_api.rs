//! A fake Engine API on a unix socket: `/_ping`, `/version`, `/info`, `/images/json`,
//! `/containers/json`, `/system/df` (every image sharing nothing, an empty build cache) and
//! `/events` (a stream that stays open with no events), `GET /images/{name}/json` (by ID or
//! tag) and `DELETE /images/{name}` (answered as deleted, the listing unchanged: one prune's
//! worth; with `deleting`, a DELETE by ID removes the image from the listing and inspect, as
//! a daemon would), answering with a synthetic inventory in Docker 20.10's JSON shapes. Stops by
//! itself after `max` (and when the socket cannot be served).

use std::convert::Infallible;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use stagesweep::inventory::{Image, Inventory};
use tokio::net::UnixListener;

/// The engine ID `/info` reports (and histories written for it carry).
pub const ENGINE_ID: &str = "FAKE:ENGINE:API";

struct Answers {
    images: Bytes,
    containers: Bytes,
    version: Bytes,
    info: Bytes,
    disk_usage: Bytes,
    /// `GET /images/{name}/json` by ID and by each tag.
    inspect: std::collections::HashMap<String, Bytes>,
    /// With `deleting`: each listed image's ID and JSON, and the IDs deleted so far.
    deleting: Option<Deleting>,
}

struct Deleting {
    listed: Vec<(String, Bytes)>,
    gone: std::sync::Mutex<std::collections::HashSet<String>>,
}

impl Deleting {
    fn is_gone(&self, id: &str) -> bool {
        self.gone
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .contains(id)
    }

    /// The listing without the deleted images.
    fn listing(&self) -> Bytes {
        let gone = self
            .gone
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut out = Vec::with_capacity(self.listed.len() * 400);
        out.push(b'[');
        for (_, json) in self.listed.iter().filter(|(id, _)| !gone.contains(id)) {
            if out.len() > 1 {
                out.push(b',');
            }
            out.extend_from_slice(json);
        }
        out.push(b']');
        out.into()
    }
}

type Body = http_body_util::combinators::BoxBody<Bytes, Infallible>;

/// A history file with one record per image (and its use count), as an agent would have
/// written it (`v1`: in the previous layout).
pub fn write_history(path: &Path, inventory: &Inventory, v1: bool) -> Result<()> {
    let now = chrono::Utc::now().timestamp();
    let mut history = stagesweep::history::History {
        engine_id: ENGINE_ID.to_owned(),
        ..stagesweep::history::History::default()
    };
    for (k, im) in inventory.images.iter().enumerate() {
        let at = now - i64::try_from(k % 86_400).unwrap_or(0);
        history.used(im.id, at, stagesweep::history::Source::Event);
        // Use counts as the agent keeps them: 0 to 3 uses an hour apart.
        for u in 0..k % 4 {
            history.used_counted(im.id, at - 3600 * i64::try_from(u).unwrap_or(0));
        }
    }
    if v1 {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        stagesweep::history::file::write(path, &stagesweep::history::file::to_bytes_v1(&history))?;
    } else {
        stagesweep::history::file::save(path, &history, true)?;
    }
    Ok(())
}

fn image_json(im: &Image) -> Value {
    let untagged = im.references.is_empty();
    json!({
        "Id": im.id,
        "ParentId": im.parent_id.map(|p| p.to_string()).unwrap_or_default(),
        "RepoTags": if untagged { vec!["<none>:<none>".to_owned()] } else { im.references.clone() },
        "RepoDigests": if untagged { vec!["<none>@<none>".to_owned()] } else { Vec::new() },
        "Created": im.created.timestamp(),
        "Size": im.size,
        "SharedSize": -1,
        "VirtualSize": im.size,
        "Labels": im.labels,
        "Containers": -1,
    })
}

/// Image inspect: what the listing says, never tagged (`LastTagTime` zero).
fn inspect_json(im: &Image) -> Value {
    json!({
        "Id": im.id,
        "Parent": im.parent_id.map(|p| p.to_string()).unwrap_or_default(),
        "RepoTags": im.references,
        "RepoDigests": [],
        "Created": im.created.to_rfc3339(),
        "Size": im.size,
        "Config": { "Labels": im.labels },
        "Metadata": { "LastTagTime": "0001-01-01T00:00:00Z" },
    })
}

fn answers(inventory: &Inventory, deleting: bool) -> Result<Answers> {
    let images: Vec<Value> = inventory.images.iter().map(image_json).collect();
    let deleting = if deleting {
        let mut listed = Vec::with_capacity(images.len());
        for (im, json) in inventory.images.iter().zip(&images) {
            listed.push((im.id.to_string(), Bytes::from(serde_json::to_vec(json)?)));
        }
        Some(Deleting {
            listed,
            gone: std::sync::Mutex::default(),
        })
    } else {
        None
    };
    let mut inspect = std::collections::HashMap::new();
    for im in &inventory.images {
        let body: Bytes = serde_json::to_vec(&inspect_json(im))?.into();
        for name in &im.references {
            inspect.insert(name.clone(), body.clone());
        }
        inspect.insert(im.id.to_string(), body);
    }
    // Docker 20.10 lists top-level images only, with their SharedSize; 0 = shares nothing.
    let parents: std::collections::HashSet<_> = inventory
        .images
        .iter()
        .filter_map(|im| im.parent_id)
        .collect();
    let top: Vec<Value> = (inventory.images.iter())
        .zip(&images)
        .filter(|(im, _)| !parents.contains(&im.id))
        .map(|(_, json)| {
            let mut json = json.clone();
            json["SharedSize"] = json!(0);
            json
        })
        .collect();
    let disk_usage = json!({
        "LayersSize": 0, "Images": top, "Containers": [], "Volumes": [], "BuildCache": [],
    });
    let containers: Vec<Value> = inventory
        .containers
        .iter()
        .map(|c| {
            json!({
                "Id": c.id, "Names": [format!("/bench-{}", &c.id[..8])], "Image": c.image,
                "ImageID": c.image_id, "Command": "/app", "Created": 1_700_000_000,
                "State": c.state, "Status": c.state, "Ports": [], "Labels": {},
                "HostConfig": { "NetworkMode": "none" }, "Mounts": [],
            })
        })
        .collect();
    let version = json!({
        "Version": "20.10.24", "ApiVersion": "1.41", "MinAPIVersion": "1.12",
        "Os": "linux", "Arch": "amd64", "GoVersion": "go1.19",
    });
    Ok(Answers {
        images: serde_json::to_vec(&images)?.into(),
        containers: serde_json::to_vec(&containers)?.into(),
        version: serde_json::to_vec(&version)?.into(),
        info: serde_json::to_vec(&json!({
            "ID": ENGINE_ID, "Name": "fake", "ServerVersion": "20.10.24",
            "DockerRootDir": "/tmp", "SystemTime": chrono::Utc::now().to_rfc3339(),
        }))?
        .into(),
        disk_usage: serde_json::to_vec(&disk_usage)?.into(),
        inspect,
        deleting,
    })
}

fn route(req: &Request<Incoming>, a: &Answers) -> Response<Body> {
    use http_body_util::BodyExt as _;
    let path = req.uri().path();
    if path.ends_with("/events") {
        // Open, and silent: a daemon where nothing happens.
        let quiet =
            futures_util::stream::pending::<Result<hyper::body::Frame<Bytes>, Infallible>>();
        return Response::builder()
            .status(StatusCode::OK)
            .header("Content-Type", "application/json")
            .body(http_body_util::StreamBody::new(quiet).boxed())
            .expect("a response from constant parts always builds");
    }
    // Accept both `/images/json` and a versioned `/v1.41/images/json`.
    let (status, body, json) = if path.ends_with("/_ping") {
        (StatusCode::OK, Bytes::from_static(b"OK"), false)
    } else if path.ends_with("/version") {
        (StatusCode::OK, a.version.clone(), true)
    } else if path.ends_with("/info") {
        (StatusCode::OK, a.info.clone(), true)
    } else if path.ends_with("/images/json") {
        let listing = a
            .deleting
            .as_ref()
            .map_or_else(|| a.images.clone(), Deleting::listing);
        (StatusCode::OK, listing, true)
    } else if path.ends_with("/containers/json") {
        (StatusCode::OK, a.containers.clone(), true)
    } else if path.ends_with("/system/df") {
        (StatusCode::OK, a.disk_usage.clone(), true)
    } else if let Some((name, body)) = image_named(path, a) {
        if req.method() == hyper::Method::DELETE {
            let key = if name.starts_with("sha256:") {
                if let Some(d) = &a.deleting {
                    d.gone
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .insert(name.clone());
                }
                "Deleted"
            } else {
                "Untagged"
            };
            let deleted = json!([{ key: name }]).to_string();
            (StatusCode::OK, Bytes::from(deleted), true)
        } else {
            (StatusCode::OK, body, true)
        }
    } else {
        let msg = format!("{{\"message\":\"fake engine: {path} is not served\"}}");
        (StatusCode::NOT_FOUND, Bytes::from(msg), true)
    };
    let kind = if json {
        "application/json"
    } else {
        "text/plain"
    };
    Response::builder()
        .status(status)
        .header("Content-Type", kind)
        .header("Api-Version", "1.41")
        .body(Full::new(body).boxed())
        .expect("a response from constant parts always builds")
}

/// `/v1.41/images/{name}/json` or `/v1.41/images/{name}` of a served image: its name and
/// inspect answer.
fn image_named(path: &str, a: &Answers) -> Option<(String, Bytes)> {
    let (_, rest) = path.split_once("/images/")?;
    let name = rest.strip_suffix("/json").unwrap_or(rest);
    let name = name.replace("%2F", "/").replace("%3A", ":");
    let body = a.inspect.get(&name)?.clone();
    if a.deleting.as_ref().is_some_and(|d| d.is_gone(&name)) {
        return None;
    }
    Some((name, body))
}

/// Serve `inventory` on `socket` until `max` has passed (`deleting`: see the module).
pub async fn serve(
    socket: &Path,
    inventory: &Inventory,
    max: Duration,
    deleting: bool,
) -> Result<()> {
    let answers = Arc::new(answers(inventory, deleting)?);
    let _ = std::fs::remove_file(socket);
    let listener =
        UnixListener::bind(socket).with_context(|| format!("binding {}", socket.display()))?;
    eprintln!(
        "engine_tool: fake engine with {} images on {}",
        inventory.images.len(),
        socket.display()
    );
    let accept = async {
        loop {
            let (stream, _) = listener.accept().await.context("accepting a connection")?;
            let answers = Arc::clone(&answers);
            tokio::spawn(async move {
                let svc = service_fn(move |req| {
                    let answers = Arc::clone(&answers);
                    async move { Ok::<_, Infallible>(route(&req, &answers)) }
                });
                // A client hanging up mid-answer is not the server's problem.
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    };
    let result: Result<()> = match tokio::time::timeout(max, accept).await {
        Ok(r) => r,
        Err(_) => Ok(()),
    };
    let _ = std::fs::remove_file(socket);
    result
}
