//! A TCP port on 127.0.0.1 in front of a docker socket: the same engine, reached as a remote
//! one (`tcp://127.0.0.1:<port>`), as through a forwarded port or a docker CLI context.

use tokio::net::{TcpListener, UnixStream};
use tokio::task::JoinHandle;

pub struct TcpProxy {
    /// `tcp://127.0.0.1:<port>`.
    pub host: String,
    task: JoinHandle<()>,
}

impl TcpProxy {
    /// Forward every connection to the unix socket of `target_host` (`unix://…`).
    pub async fn start(target_host: &str) -> TcpProxy {
        let target = target_host
            .strip_prefix("unix://")
            .expect("the proxy fronts a unix socket")
            .to_owned();
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let port = listener.local_addr().expect("local address").port();
        let task = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let target = target.clone();
                tokio::spawn(async move {
                    if let Ok(mut daemon) = UnixStream::connect(&target).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut daemon).await;
                    }
                });
            }
        });
        TcpProxy {
            host: format!("tcp://127.0.0.1:{port}"),
            task,
        }
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}
