//! A misbehaving Engine API for fault tests: a raw HTTP/1.1 server on a unix socket or on
//! loopback TCP that answers like Docker 20.10, except that the requests it is told to
//! target hang, trickle, reset mid-body, or answer garbage. It records every request line.
//!
//! Raw on purpose: a real HTTP library would refuse to send half an answer.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, UnixListener};
use tokio::task::{JoinHandle, JoinSet};

/// What the targeted requests get.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Misbehaviour {
    /// A proper answer.
    Nothing,
    /// The request is read and never answered; the connection stays open.
    Hang,
    /// Headers at once, then one body byte every 200 ms, never finishing.
    SlowBody,
    /// The status line one byte every 200 ms, never finishing the headers.
    SlowHeaders,
    /// Headers announcing 64 KiB of body, 100 bytes of it, then a reset (TCP RST on TCP,
    /// a close on a unix socket).
    ResetMidBody,
    /// `200 OK` with a body that is not JSON.
    GarbageJson,
    /// Bytes that are not HTTP at all, then a close.
    NotHttp,
}

/// Which requests misbehave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// Every request, `/_ping` and `/version` (negotiation at connect) included.
    Everything,
    /// `GET /version` only (the negotiation at connect).
    Version,
    /// `GET /images/json` only (the inventory).
    Images,
    /// `DELETE /images/…` only (deletions).
    Delete,
}

/// How the server answers.
#[derive(Debug, Clone)]
pub struct Behaviour {
    pub misbehaviour: Misbehaviour,
    pub target: Target,
    /// The body of `GET /images/json` (raw bytes: may be invalid UTF-8 on purpose).
    pub images: Vec<u8>,
}

/// A running fault server; stops (with every connection) when dropped.
pub struct FaultServer {
    /// `unix:///…/docker.sock` or `tcp://127.0.0.1:PORT`.
    pub host: String,
    requests: Arc<Mutex<Vec<String>>>,
    task: JoinHandle<()>,
    _dir: tempfile::TempDir,
}

/// The configuration of a one-shot run against the server at `host`: no history, the locks
/// in `dir`, `docker.timeout` of `timeout_secs`, one policy `builders` (`stage=builder`).
pub fn builders_config(host: &str, timeout_secs: u64, dir: &Path) -> String {
    format!(
        "history:\n  enabled: false\ndocker:\n  host: \"{host}\"\n  timeout: {timeout_secs}s\nlock_file: {}/lock\nbuilds:\n  lock_file: {}/builds.lock\npolicies:\n  - name: builders\n    match:\n      labels: [stage=builder]\n",
        dir.display(),
        dir.display()
    )
}

const VERSION: &str = r#"{"Version":"20.10.24","ApiVersion":"1.41","MinAPIVersion":"1.12","Os":"linux","Arch":"amd64"}"#;

impl FaultServer {
    /// Serve on a fresh unix socket.
    pub fn unix(behaviour: Behaviour) -> FaultServer {
        let dir = tempfile::Builder::new()
            .prefix("ss-fault-")
            .tempdir_in("/tmp")
            .expect("temp dir for the socket");
        let path = dir.path().join("docker.sock");
        let listener = UnixListener::bind(&path).expect("bind the fault socket");
        let requests = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&requests);
        // Parsed once: image inspects are answered from it.
        let parsed: Arc<Vec<serde_json::Value>> =
            Arc::new(serde_json::from_slice(&behaviour.images).unwrap_or_default());
        let task = tokio::spawn(async move {
            let mut conns = JoinSet::new();
            while let Ok((stream, _)) = listener.accept().await {
                conns.spawn(serve_conn(
                    stream,
                    behaviour.clone(),
                    Arc::clone(&parsed),
                    Arc::clone(&log),
                ));
            }
        });
        FaultServer {
            host: format!("unix://{}", path.display()),
            requests,
            task,
            _dir: dir,
        }
    }

    /// Serve on loopback TCP (so that a reset is a real TCP RST).
    pub async fn tcp(behaviour: Behaviour) -> FaultServer {
        let dir = tempfile::tempdir().expect("temp dir");
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let port = listener.local_addr().expect("local addr").port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&requests);
        // Parsed once: image inspects are answered from it.
        let parsed: Arc<Vec<serde_json::Value>> =
            Arc::new(serde_json::from_slice(&behaviour.images).unwrap_or_default());
        let task = tokio::spawn(async move {
            let mut conns = JoinSet::new();
            while let Ok((stream, _)) = listener.accept().await {
                // Zero linger: closing the connection sends a reset, not a FIN.
                let _ = stream.set_zero_linger();
                conns.spawn(serve_conn(
                    stream,
                    behaviour.clone(),
                    Arc::clone(&parsed),
                    Arc::clone(&log),
                ));
            }
        });
        FaultServer {
            host: format!("tcp://127.0.0.1:{port}"),
            requests,
            task,
            _dir: dir,
        }
    }

    /// Every request line received so far (`GET /v1.41/images/json?all=true`).
    pub fn requests(&self) -> Vec<String> {
        self.requests.lock().expect("request log").clone()
    }
}

impl Drop for FaultServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn targeted(target: Target, method: &str, path: &str) -> bool {
    let path = path.split('?').next().unwrap_or(path);
    match target {
        Target::Everything => true,
        Target::Version => method == "GET" && path.ends_with("/version"),
        Target::Images => method == "GET" && path.ends_with("/images/json"),
        Target::Delete => method == "DELETE",
    }
}

/// Read one request head (bounded); `None` when the client closed.
async fn read_head<S: AsyncRead + Unpin>(stream: &mut S) -> Option<String> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() > 64 * 1024 || stream.read(&mut byte).await.ok()? == 0 {
            return None;
        }
        head.push(byte[0]);
    }
    Some(String::from_utf8_lossy(&head).into_owned())
}

async fn serve_conn<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    behaviour: Behaviour,
    parsed: Arc<Vec<serde_json::Value>>,
    log: Arc<Mutex<Vec<String>>>,
) {
    while let Some(head) = read_head(&mut stream).await {
        let line = head.lines().next().unwrap_or_default().to_owned();
        log.lock().expect("request log").push(line.clone());
        let mut parts = line.split_whitespace();
        let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
        let misbehaviour = if targeted(behaviour.target, method, path) {
            behaviour.misbehaviour
        } else {
            Misbehaviour::Nothing
        };
        if !misbehave(&mut stream, misbehaviour).await {
            return;
        }
        let (status, body) = answer(method, path, &behaviour, &parsed);
        let head = format!(
            "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nApi-Version: 1.41\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        if stream.write_all(head.as_bytes()).await.is_err()
            || stream.write_all(&body).await.is_err()
        {
            return;
        }
    }
}

/// Act out `m`; true when a proper answer should follow.
async fn misbehave<S: AsyncWrite + Unpin>(stream: &mut S, m: Misbehaviour) -> bool {
    let forever = Duration::from_secs(3600);
    match m {
        Misbehaviour::Nothing => return true,
        Misbehaviour::Hang => tokio::time::sleep(forever).await,
        Misbehaviour::SlowBody => {
            let head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n[";
            if stream.write_all(head.as_bytes()).await.is_err() {
                return false;
            }
            while stream.write_all(b" ").await.is_ok() {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
        Misbehaviour::SlowHeaders => {
            for b in b"HTTP/1.1 200 OK\r\nContent-Type: appl".iter().cycle() {
                if stream.write_all(&[*b]).await.is_err() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
        Misbehaviour::ResetMidBody => {
            let head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 65536\r\n\r\n";
            let _ = stream.write_all(head.as_bytes()).await;
            let _ = stream.write_all(&[b'['; 100]).await;
            let _ = stream.flush().await;
            // The caller drops the stream: with zero linger (TCP) that close is a reset.
        }
        Misbehaviour::GarbageJson => {
            let body = b"{\"this is\": not json at all \xff\xfe";
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nApi-Version: 1.41\r\nContent-Length: {}\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(head.as_bytes()).await;
            let _ = stream.write_all(body).await;
            return false;
        }
        Misbehaviour::NotHttp => {
            let _ = stream
                .write_all(b"\x00\xffSSH-2.0-OpenSSH_9.2\r\n\r\n")
                .await;
        }
    }
    false
}

/// `GET /images/{name}/json` from the listing: the image by ID or tag, else 404.
fn inspect(path: &str, images: &[serde_json::Value]) -> (&'static str, Vec<u8>) {
    let name = path
        .trim_end_matches("/json")
        .rsplit("/images/")
        .next()
        .unwrap_or_default()
        .replace("%3A", ":");
    let found = images.iter().find(|im| {
        im["Id"] == name.as_str()
            || im["Id"].as_str().is_some_and(|id| id.ends_with(&name))
            || im["RepoTags"]
                .as_array()
                .is_some_and(|t| t.iter().any(|t| *t == name.as_str()))
    });
    let Some(im) = found else {
        let body = format!(r#"{{"message":"No such image: {name}"}}"#);
        return ("404 Not Found", body.into_bytes());
    };
    let created = chrono::DateTime::from_timestamp(im["Created"].as_i64().unwrap_or(0), 0)
        .unwrap_or_default()
        .to_rfc3339();
    let tags: Vec<&serde_json::Value> = im["RepoTags"]
        .as_array()
        .map(|t| t.iter().filter(|t| *t != "<none>:<none>").collect())
        .unwrap_or_default();
    let body = serde_json::json!({
        "Id": im["Id"], "Parent": im["ParentId"], "RepoTags": tags, "RepoDigests": [],
        "Created": created, "Size": im["Size"], "Config": {"Labels": im["Labels"]},
        "Metadata": {"LastTagTime": "0001-01-01T00:00:00Z"},
    });
    ("200 OK", body.to_string().into_bytes())
}

fn answer(
    method: &str,
    path: &str,
    behaviour: &Behaviour,
    parsed: &[serde_json::Value],
) -> (&'static str, Vec<u8>) {
    let bare = path.split('?').next().unwrap_or(path);
    if bare.ends_with("/_ping") {
        ("200 OK", b"OK".to_vec())
    } else if bare.ends_with("/version") {
        ("200 OK", VERSION.as_bytes().to_vec())
    } else if bare.ends_with("/info") {
        let info = r#"{"ID":"FAULT:SERVER","Name":"fault","ServerVersion":"20.10.24"}"#;
        ("200 OK", info.as_bytes().to_vec())
    } else if method == "GET" && bare.ends_with("/images/json") {
        ("200 OK", behaviour.images.clone())
    } else if method == "GET" && bare.contains("/images/") && bare.ends_with("/json") {
        inspect(bare, parsed)
    } else if method == "GET" && bare.ends_with("/containers/json") {
        ("200 OK", b"[]".to_vec())
    } else if method == "DELETE" {
        let id = bare.rsplit('/').next().unwrap_or_default();
        let body = format!(r#"[{{"Deleted":"{id}"}}]"#);
        ("200 OK", body.into_bytes())
    } else {
        let body = format!(r#"{{"message":"fault server: {method} {bare} is not served"}}"#);
        ("404 Not Found", body.into_bytes())
    }
}
