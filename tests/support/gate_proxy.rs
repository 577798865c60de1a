//! A byte-level proxy in front of a docker socket that holds the first `DELETE` (and every
//! later request on any connection) at a gate until the test opens it: "between plan and
//! delete" made deterministic, so that the test can act as another actor right then.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{Notify, watch};
use tokio::task::{JoinHandle, JoinSet};

pub struct GateProxy {
    /// `unix://…/proxy.sock`.
    pub host: String,
    delete_seen: Arc<Notify>,
    /// The request line of the first `DELETE` held at the gate.
    held: Arc<Mutex<Option<String>>>,
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
        let held = Arc::new(Mutex::new(None));
        let seen = Arc::clone(&delete_seen);
        let first = Arc::clone(&held);
        let task = tokio::spawn(async move {
            let mut conns = JoinSet::new();
            while let Ok((client, _)) = listener.accept().await {
                conns.spawn(relay(
                    client,
                    target.clone(),
                    (Arc::clone(&seen), Arc::clone(&first)),
                    opened.clone(),
                ));
            }
        });
        GateProxy {
            host: format!("unix://{}", path.display()),
            delete_seen,
            held,
            gate,
            task,
            _dir: dir,
        }
    }

    /// Wait until a `DELETE` has reached the (closed) gate.
    pub async fn delete_seen(&self) {
        self.delete_seen.notified().await;
    }

    /// The name the held `DELETE` asks to remove (a reference or an image ID), decoded.
    pub fn held_name(&self) -> Option<String> {
        let line = self.held.lock().expect("held").clone()?;
        let path = line.split_whitespace().nth(1)?;
        let name = path.split_once("/images/")?.1;
        let name = name.split('?').next()?;
        Some(
            name.replace("%2F", "/")
                .replace("%3A", ":")
                .replace("%40", "@"),
        )
    }

    /// Run `stagesweep prune --output json` through this proxy with one policy, for the
    /// images carrying `selector` and `stage=builder`, older than `min_age`; returns its
    /// exit code, stdout and stderr once it ends (the gate must be opened meanwhile).
    pub fn prune(
        &self,
        selector: &str,
        min_age: &str,
    ) -> JoinHandle<(Option<i32>, String, String)> {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = dir.path().join("c.yaml");
        std::fs::write(
            &config,
            format!(
                "history:\n  enabled: false\ndocker:\n  host: \"{}\"\n  timeout: 60s\nlock_file: {}/lock\nbuilds:\n  lock_file: {}/builds.lock\npolicies:\n  - name: builders\n    match:\n      labels: [\"{selector}\", stage=builder]\n    min_age: {min_age}\n",
                self.host,
                dir.path().display(),
                dir.path().display(),
            ),
        )
        .expect("config");
        tokio::spawn(async move {
            let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_stagesweep"))
                .args(["prune", "--output", "json", "--config"])
                .arg(&config)
                .kill_on_drop(true)
                .output()
                .await
                .expect("run prune");
            drop(dir);
            (
                out.status.code(),
                String::from_utf8_lossy(&out.stdout).into_owned(),
                String::from_utf8_lossy(&out.stderr).into_owned(),
            )
        })
    }

    /// Wait (bounded) until a `DELETE` is held at the gate.
    pub async fn wait_for_delete(&self) {
        tokio::time::timeout(Duration::from_secs(120), self.delete_seen())
            .await
            .expect("stagesweep reaches its first deletion");
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
    (seen, held): (Arc<Notify>, Arc<Mutex<Option<String>>>),
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
            let line = String::from_utf8_lossy(&buf[..n]);
            let line = line.lines().next().unwrap_or_default().to_owned();
            held.lock().expect("held").get_or_insert(line);
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
