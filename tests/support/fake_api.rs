//! A fake Engine API on a unix socket (or TCP) that answers with recorded JSON
//! (`tests/fixtures/api/<engine>/`): `/_ping`, `/version`, `/info`, `/images/json`,
//! `/images/{name}/json`, `/containers/json` and `DELETE /images/{name}` — every call
//! stagesweep makes. Paths are accepted with or without a `/v1.xx` prefix; every request is
//! recorded (`METHOD path`) so tests can check what was (not) called, and every connection
//! it accepts is counted. Connections are kept alive, as the Docker daemon keeps them.

use std::collections::{BTreeMap, VecDeque};
use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::UnixListener;

/// A connection the fake engine serves: a unix socket's or a TCP one.
pub trait Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin> Io for T {}

enum Listener {
    Unix(UnixListener),
    Tcp(tokio::net::TcpListener),
}

impl Listener {
    async fn accept(&self) -> std::io::Result<Box<dyn Io>> {
        Ok(match self {
            Listener::Unix(l) => Box::new(l.accept().await?.0),
            Listener::Tcp(l) => Box::new(l.accept().await?.0),
        })
    }
}

/// The recorded answers of one engine (one fixture directory).
#[derive(Debug, Clone)]
pub struct Recorded {
    pub version: Value,
    pub info: Value,
    pub images: Value,
    pub containers: Value,
    /// `GET /images/{name}/json` of the image it names (by ID or any of its tags).
    pub image: Value,
    /// `DELETE /images/{name}`: per name, the answers in the order they were recorded
    /// (`[{"status": 409, "body": …}, {"status": 200, "body": …}]`); the last one repeats.
    pub delete: Value,
}

/// `tests/fixtures/api/<name>`.
pub fn fixture_dir(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/api")
        .join(name)
}

impl Recorded {
    /// Read `version.json`, `info.json`, `images.json`, `containers.json`, `image.json` and
    /// `delete.json` from `tests/fixtures/api/<name>`.
    pub fn load(name: &str) -> Recorded {
        let dir = fixture_dir(name);
        let read = |file: &str| -> Value {
            let path = dir.join(file);
            let text = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        };
        Recorded {
            version: read("version.json"),
            info: read("info.json"),
            images: read("images.json"),
            containers: read("containers.json"),
            image: read("image.json"),
            delete: read("delete.json"),
        }
    }

    /// The engine's API version (`/version` `ApiVersion`).
    pub fn api_version(&self) -> String {
        self.version["ApiVersion"]
            .as_str()
            .unwrap_or("1.41")
            .to_owned()
    }

    /// Podman answers `_ping` with `Libpod-Api-Version` (and names itself in `Components`).
    pub fn libpod_version(&self) -> Option<String> {
        let components = self.version["Components"].as_array()?;
        components
            .iter()
            .find(|c| c["Name"].as_str().is_some_and(|n| n.starts_with("Podman")))
            .and_then(|c| c["Version"].as_str())
            .map(str::to_owned)
    }
}

struct State {
    rec: Recorded,
    deletes: BTreeMap<String, VecDeque<Value>>,
    requests: Vec<String>,
    /// The API version each request's path named (`/v1.52/…` → `1.52`), if any.
    versions: Vec<String>,
}

/// The fake engine, serving until dropped.
pub struct FakeApi {
    /// `unix:///…/engine.sock` (or `tcp://127.0.0.1:<port>`), for `DockerConfig::host`.
    pub host: String,
    state: Arc<Mutex<State>>,
    accepted: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
    _dir: tempfile::TempDir,
}

impl FakeApi {
    /// Serve `rec` on a new socket in a temporary directory.
    pub fn start(rec: Recorded) -> FakeApi {
        let dir = tempfile::tempdir().expect("a temp dir for the socket");
        let sock = dir.path().join("engine.sock");
        let listener = UnixListener::bind(&sock).expect("binding the fake engine's socket");
        let host = format!("unix://{}", sock.display());
        Self::serve(rec, host, dir, Listener::Unix(listener))
    }

    /// Serve `rec` over TCP on 127.0.0.1 (`tcp://127.0.0.1:<port>`): a remote engine, as
    /// far as a client can tell.
    pub fn start_tcp(rec: Recorded) -> FakeApi {
        let dir = tempfile::tempdir().expect("a temp dir");
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        listener.set_nonblocking(true).expect("non-blocking");
        let port = listener.local_addr().expect("local address").port();
        let listener = tokio::net::TcpListener::from_std(listener).expect("a tokio listener");
        Self::serve(
            rec,
            format!("tcp://127.0.0.1:{port}"),
            dir,
            Listener::Tcp(listener),
        )
    }

    fn serve(rec: Recorded, host: String, dir: tempfile::TempDir, listener: Listener) -> FakeApi {
        let deletes = rec
            .delete
            .as_object()
            .map(|m| {
                let seq = |v: &Value| v.as_array().cloned().unwrap_or_default().into();
                m.iter().map(|(k, v)| (k.clone(), seq(v))).collect()
            })
            .unwrap_or_default();
        let state = Arc::new(Mutex::new(State {
            rec,
            deletes,
            requests: Vec::new(),
            versions: Vec::new(),
        }));
        let shared = Arc::clone(&state);
        let accepted = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&accepted);
        let task = tokio::spawn(async move {
            while let Ok(stream) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
                let state = Arc::clone(&shared);
                tokio::spawn(async move {
                    let svc = service_fn(move |req| {
                        let state = Arc::clone(&state);
                        async move { Ok::<_, Infallible>(answer(&req, &state)) }
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        FakeApi {
            host,
            state,
            accepted,
            task,
            _dir: dir,
        }
    }

    /// How many connections it has accepted so far.
    pub fn connections(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    /// Every request so far, as `METHOD /path` (version prefix removed).
    pub fn requests(&self) -> Vec<String> {
        self.state.lock().expect("not poisoned").requests.clone()
    }

    /// The API versions the requests' paths named (`1.52` for `/v1.52/…`), in order.
    pub fn versions(&self) -> Vec<String> {
        self.state.lock().expect("not poisoned").versions.clone()
    }
}

impl Drop for FakeApi {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// `%2F` → `/` and the like (bollard escapes names in paths).
fn unescape(path: &str) -> String {
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `/v1.41/images/json` → `/images/json`.
fn unversioned(path: &str) -> &str {
    match path.strip_prefix("/v") {
        Some(rest) => match rest.split_once('/') {
            Some((v, tail)) if v.chars().all(|c| c.is_ascii_digit() || c == '.') => {
                &path[path.len() - tail.len() - 1..]
            }
            _ => path,
        },
        None => path,
    }
}

fn names_image(image: &Value, name: &str) -> bool {
    let id = image["Id"].as_str().unwrap_or_default();
    let hex = id.strip_prefix("sha256:").unwrap_or(id);
    let tags = image["RepoTags"].as_array().cloned().unwrap_or_default();
    name == id
        || (name.len() >= 12 && hex.starts_with(name.strip_prefix("sha256:").unwrap_or(name)))
        || tags.iter().any(|t| t.as_str() == Some(name))
}

/// `(1, 44)` for `"1.44"`.
fn api_version(text: &str) -> Option<(u32, u32)> {
    let (major, minor) = text.split_once('.')?;
    Some((major.parse().ok()?, minor.parse().ok()?))
}

fn answer(req: &Request<Incoming>, state: &Mutex<State>) -> Response<Full<Bytes>> {
    let raw = unescape(req.uri().path());
    let path = unversioned(&raw).to_owned();
    // `/v1.52/images/json` named `1.52`; an unversioned path names nothing.
    let prefix = &raw[..raw.len() - path.len()];
    let named = prefix.trim_start_matches("/v").to_owned();
    let mut st = state.lock().expect("not poisoned");
    st.requests.push(format!("{} {path}", req.method()));
    if !named.is_empty() {
        st.versions.push(named.clone());
    }
    let rec = &st.rec;
    // As Docker answers a version below its `MinAPIVersion` (Docker 29: 1.44).
    let min = rec.version["MinAPIVersion"].as_str().unwrap_or_default();
    if let (Some(asked), Some(floor)) = (api_version(&named), api_version(min))
        && asked < floor
    {
        let message = format!(
            "client version {named} is too old. Minimum supported API version is {min}, \
             please upgrade your client to a newer version"
        );
        return Response::builder()
            .status(StatusCode::BAD_REQUEST)
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(
                json!({ "message": message }).to_string(),
            )))
            .expect("a valid response");
    }
    let (status, body) = match (req.method(), path.as_str()) {
        (_, "/_ping") => (200, Value::String("OK".into())),
        (&Method::GET, "/version") => (200, rec.version.clone()),
        (&Method::GET, "/info") => (200, rec.info.clone()),
        (&Method::GET, "/images/json") => (200, rec.images.clone()),
        (&Method::GET, "/containers/json") => (200, rec.containers.clone()),
        (&Method::GET, p) if p.starts_with("/images/") && p.ends_with("/json") => {
            let name = &p["/images/".len()..p.len() - "/json".len()];
            if names_image(&rec.image, name) {
                (200, rec.image.clone())
            } else {
                (404, json!({ "message": format!("No such image: {name}") }))
            }
        }
        (&Method::DELETE, p) if p.starts_with("/images/") => {
            let name = p["/images/".len()..].to_owned();
            let answers = st.deletes.get_mut(&name);
            let next = answers.and_then(|a| {
                if a.len() > 1 {
                    a.pop_front()
                } else {
                    a.front().cloned()
                }
            });
            match next {
                Some(a) => (
                    u16::try_from(a["status"].as_u64().unwrap_or(500)).unwrap_or(500),
                    a["body"].clone(),
                ),
                None => (404, json!({ "message": format!("No such image: {name}") })),
            }
        }
        _ => (404, json!({ "message": format!("page not found: {path}") })),
    };
    let rec = &st.rec;
    let (bytes, kind) = match body {
        Value::String(s) if path == "/_ping" => (Bytes::from(s), "text/plain; charset=utf-8"),
        other => (
            Bytes::from(serde_json::to_vec(&other).expect("a json value serializes")),
            "application/json",
        ),
    };
    let mut response = Response::builder()
        .status(StatusCode::from_u16(status).expect("a recorded status is valid"))
        .header("Content-Type", kind)
        .header("Api-Version", rec.api_version());
    if let Some(libpod) = rec.libpod_version() {
        response = response
            .header("Libpod-Api-Version", libpod.clone())
            .header("Server", format!("Libpod/{libpod} (linux)"));
    }
    response
        .body(Full::new(bytes))
        .expect("a response from valid parts builds")
}

/// Add an unknown field to every JSON object in `value` (recursively): what a newer engine
/// may send. Objects whose values are all strings may be free-form maps (`Labels`,
/// `Details`), so they get a string entry; the others an object with nested values.
pub fn with_unknown_fields(value: &mut Value) {
    match value {
        Value::Object(map) => {
            let string_map = !map.is_empty() && map.values().all(Value::is_string);
            for v in map.values_mut() {
                with_unknown_fields(v);
            }
            let extra = if string_map {
                json!("from the future")
            } else {
                json!({ "Nested": [1, "two", null], "Flag": true })
            };
            map.insert("FieldFromTheFuture".into(), extra);
        }
        Value::Array(items) => items.iter_mut().for_each(with_unknown_fields),
        _ => {}
    }
}

/// Keep only `keep` in every object of the array `value` (or in the object itself).
pub fn only_fields(value: &mut Value, keep: &[&str]) {
    let strip = |v: &mut Value| {
        if let Value::Object(map) = v {
            map.retain(|k, _| keep.contains(&k.as_str()));
        }
    };
    match value {
        Value::Array(items) => items.iter_mut().for_each(strip),
        other => strip(other),
    }
}
