//! A byte-level proxy in front of a docker socket that holds the first `DELETE` (and every
//! later request on any connection) at a gate until the test opens it: "between plan and
//! delete" made deterministic, so that the test can act as another actor right then.

use std::path::Path;
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{Notify, watch};
use tokio::task::{JoinHandle, JoinSet};

pub struct GateProxy {
    /// `unix://…/proxy.sock`.
    pub host: String,
    delete_seen: Arc<Notify>,
    gate: watch::Sender<bool>,
    task: JoinHandle<()>,
    _dir: tempfile::TempDir,
}

impl GateProxy {
    /// Proxy to the unix socket of `target_host` (`unix://…`).
    pub fn start(target_host: &str) -> GateProxy {
        let target = target_host
            .strip_prefix("unix://")
            .expect("the gate proxy fronts a unix socket")
            .to_owned();
        let dir = tempfile::Builder::new()
            .prefix("ss-gate-")
            .tempdir_in("/tmp")
            .expect("temp dir");
        let path = dir.path().join("proxy.sock");
        let listener = UnixListener::bind(&path).expect("bind the proxy socket");
        let delete_seen = Arc::new(Notify::new());
        let (gate, opened) = watch::channel(false);
        let seen = Arc::clone(&delete_seen);
        let task = tokio::spawn(async move {
            let mut conns = JoinSet::new();
            while let Ok((client, _)) = listener.accept().await {
                conns.spawn(relay(
                    client,
                    target.clone(),
                    Arc::clone(&seen),
                    opened.clone(),
                ));
            }
        });
        GateProxy {
            host: format!("unix://{}", path.display()),
            delete_seen,
            gate,
            task,
            _dir: dir,
        }
    }

    /// Wait until a `DELETE` has reached the (closed) gate.
    pub async fn delete_seen(&self) {
        self.delete_seen.notified().await;
    }

    /// Let everything through from now on.
    pub fn open(&self) {
        let _ = self.gate.send(true);
    }
}

impl Drop for GateProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn relay(
    client: UnixStream,
    target: String,
    seen: Arc<Notify>,
    mut opened: watch::Receiver<bool>,
) {
    let Ok(upstream) = UnixStream::connect(Path::new(&target)).await else {
        return;
    };
    let (mut client_read, mut client_write) = client.into_split();
    let (mut up_read, mut up_write) = upstream.into_split();
    let down = tokio::spawn(async move {
        let _ = tokio::io::copy(&mut up_read, &mut client_write).await;
        let _ = client_write.shutdown().await;
    });
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match client_read.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if !*opened.borrow() && buf[..n].starts_with(b"DELETE ") {
            seen.notify_one();
            if opened.wait_for(|open| *open).await.is_err() {
                break;
            }
        }
        if up_write.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
    let _ = up_write.shutdown().await;
    let _ = down.await;
}
