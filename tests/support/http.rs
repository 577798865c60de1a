//! Plain HTTP/1.1 against a loopback listener (the agent's `/metrics`, `/healthz`, `/livez`):
//! a free port to give it, and one-shot GETs, each step bounded in time.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

/// A free loopback port (bound, then released).
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    l.local_addr().expect("local addr").port()
}

/// One answer: the status code, the head (status line and header fields) and the body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub head: String,
    pub body: String,
}

/// One `GET path` on `127.0.0.1:port` with an optional `Accept` header; connect, send and
/// receive each bounded by `limit`. `None` when it cannot connect or the answer is not HTTP.
pub fn request(port: u16, path: &str, accept: Option<&str>, limit: Duration) -> Option<Response> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut s = TcpStream::connect_timeout(&addr, limit).ok()?;
    s.set_read_timeout(Some(limit)).ok()?;
    s.set_write_timeout(Some(limit)).ok()?;
    let accept = accept.map_or_else(String::new, |a| format!("Accept: {a}\r\n"));
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\n{accept}Connection: close\r\n\r\n"
    )
    .ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let status = text.split_whitespace().nth(1)?.parse().ok()?;
    let (head, body) = text.split_once("\r\n\r\n")?;
    Some(Response {
        status,
        head: head.to_owned(),
        body: body.to_owned(),
    })
}

/// One `GET path` on `127.0.0.1:port`, every step bounded by `limit`: `(status, body)`.
pub fn http_get(port: u16, path: &str, limit: Duration) -> Option<(u16, String)> {
    request(port, path, None, limit).map(|r| (r.status, r.body))
}
