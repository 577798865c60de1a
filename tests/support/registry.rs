//! A minimal read-only registry (distribution API v2, plain HTTP on 127.0.0.1) that serves
//! one single-layer image, so that a test can `docker pull REPO@sha256:…` and get what
//! nothing else here can make: an image known only by digest (`RepoTags` empty,
//! `RepoDigests` set). dockerd treats registries on 127.0.0.0/8 as insecure (plain HTTP)
//! by default. Serves on a thread until dropped; answers `Connection: close`.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

use serde_json::json;

use super::fixture::{FixtureImage, image_blobs, sha256_hex};

const MANIFEST_TYPE: &str = "application/vnd.docker.distribution.manifest.v2+json";

/// A running registry; stops when dropped.
pub struct Registry {
    /// `127.0.0.1:PORT`.
    pub addr: String,
    /// `sha256:…` of the manifest: pull `{addr}/{repo}@{digest}`.
    pub digest: String,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

/// Serve `image` (its labels and `Created`, one layer; a parent is ignored) under `repo`.
pub fn serve(repo: &str, image: &FixtureImage) -> Registry {
    let (config, layer) = image_blobs(image);
    let config_digest = format!("sha256:{}", sha256_hex(&config));
    // The layer is served as it is, uncompressed under the gzip media type: the daemon
    // detects the compression of what it downloads.
    let layer_digest = format!("sha256:{}", sha256_hex(&layer));
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST_TYPE,
        "config": {
            "mediaType": "application/vnd.docker.container.image.v1+json",
            "size": config.len(),
            "digest": config_digest,
        },
        "layers": [{
            "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
            "size": layer.len(),
            "digest": layer_digest,
        }],
    });
    let manifest = serde_json::to_vec(&manifest).expect("a json value always serializes");
    let digest = format!("sha256:{}", sha256_hex(&manifest));
    let mut routes: HashMap<String, (&'static str, Vec<u8>)> = HashMap::new();
    routes.insert("/v2/".to_owned(), ("application/json", b"{}".to_vec()));
    routes.insert(
        format!("/v2/{repo}/manifests/{digest}"),
        (MANIFEST_TYPE, manifest),
    );
    routes.insert(
        format!("/v2/{repo}/blobs/{config_digest}"),
        ("application/octet-stream", config),
    );
    routes.insert(
        format!("/v2/{repo}/blobs/{layer_digest}"),
        ("application/octet-stream", layer),
    );
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    let addr = listener.local_addr().expect("a bound address").to_string();
    let stop = Arc::new(AtomicBool::new(false));
    let stopping = Arc::clone(&stop);
    let manifest_digest = digest.clone();
    let thread = std::thread::spawn(move || {
        for stream in listener.incoming() {
            if stopping.load(Ordering::SeqCst) {
                return;
            }
            if let Ok(stream) = stream {
                answer(&stream, &routes, &manifest_digest);
            }
        }
    });
    Registry {
        addr,
        digest,
        stop,
        thread: Some(thread),
    }
}

/// Answer one request (GET or HEAD) from `routes`, 404 otherwise. A TLS handshake gets a
/// plain HTTP answer at once: Docker on the containerd image store tries HTTPS first and
/// falls back to plain HTTP for an insecure registry only when the answer is not TLS.
fn answer(stream: &TcpStream, routes: &HashMap<String, (&'static str, Vec<u8>)>, digest: &str) {
    let mut first = [0u8; 1];
    if stream.peek(&mut first).is_ok_and(|n| n == 1) && first[0] == 0x16 {
        let mut out = stream;
        let _ = out.write_all(
            b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        );
        return;
    }
    let mut reader = BufReader::new(stream);
    let mut request = String::new();
    if reader.read_line(&mut request).is_err() {
        return;
    }
    // Skip the headers.
    let mut line = String::new();
    while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
        line.clear();
    }
    let mut parts = request.split_whitespace();
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let path = path.split('?').next().unwrap_or(path);
    let mut out = stream;
    let head = match routes.get(path) {
        Some((kind, body)) => format!(
            "HTTP/1.1 200 OK\r\nContent-Type: {kind}\r\nContent-Length: {}\r\n\
             Docker-Content-Digest: {}\r\nDocker-Distribution-API-Version: registry/2.0\r\n\
             Connection: close\r\n\r\n",
            body.len(),
            if path.contains("/manifests/") {
                digest
            } else {
                path.rsplit('/').next().unwrap_or("")
            },
        ),
        None => {
            "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_owned()
        }
    };
    let _ = out.write_all(head.as_bytes());
    if method == "GET"
        && let Some((_, body)) = routes.get(path)
    {
        let _ = out.write_all(body);
    }
    let _ = out.flush();
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so that it sees the flag.
        let _ = TcpStream::connect(&self.addr);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Pull `{addr}/{repo}@{digest}` through the daemon; returns that reference, which is the
/// image's only one (a pull by digest records no tag).
pub async fn pull(docker: &bollard::Docker, registry: &Registry, repo: &str) -> String {
    use futures_util::TryStreamExt;
    let name = format!("{}/{repo}", registry.addr);
    let opts = bollard::query_parameters::CreateImageOptionsBuilder::new()
        .from_image(&name)
        .tag(&registry.digest)
        .build();
    docker
        .create_image(Some(opts), None, None)
        .try_collect::<Vec<_>>()
        .await
        .unwrap_or_else(|e| {
            panic!(
                "pulling {name}@{} from the test registry: {e}",
                registry.digest
            )
        });
    format!("{name}@{}", registry.digest)
}
