//! `stagesweep healthcheck`: one HTTP GET against a running agent's health endpoint, for
//! a container `HEALTHCHECK` (the image is `FROM scratch`: no curl, no shell).
//!
//! Exit codes follow Docker's `HEALTHCHECK` convention: 0 healthy (a 2xx answer), 1
//! unhealthy (any other answer, no answer, or no answer in time); 2 for a bad `--url` or
//! configuration. Decides nothing about the agent itself.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper::{Request, Uri};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use super::cli::{ConfigArg, HealthcheckArgs};
use super::{CmdError, load_config, stdout};

/// The path asked when no `--url` is given: liveness (the process runs and its loop ticks),
/// not readiness (`/healthz` also fails while docker is unreachable, and a container
/// restart would not bring docker back).
pub const DEFAULT_PATH: &str = "/livez";

/// Unhealthy, in Docker's `HEALTHCHECK` convention.
pub const UNHEALTHY: i32 = 1;

/// Run the check; prints the answer's status and body (one line) and returns the exit code.
pub async fn run(config_arg: &ConfigArg, args: &HealthcheckArgs) -> Result<i32, CmdError> {
    let uri = if let Some(url) = &args.url {
        parse_url(url)?
    } else {
        let config = load_config(config_arg)?;
        if !config.metrics.enabled {
            return Err(usage(
                "metrics.enabled is false, so the agent serves no health endpoint \
                 (enable metrics, or pass --url)"
                    .to_owned(),
            ));
        }
        default_url(config.metrics.listen)
    };
    match tokio::time::timeout(args.timeout, get(&uri)).await {
        Ok(Ok((status, body))) => {
            let line = body.lines().next().unwrap_or("").trim();
            stdout::lines(&[format!("{uri}: {status} {line}")])?;
            Ok(if status.is_success() {
                crate::exit::OK
            } else {
                UNHEALTHY
            })
        }
        Ok(Err(e)) => {
            eprintln!(
                "stagesweep: {uri}: {e} (is the agent running and metrics.listen this address?)"
            );
            Ok(UNHEALTHY)
        }
        Err(_) => {
            eprintln!(
                "stagesweep: {uri}: no answer within {}",
                humantime::format_duration(args.timeout)
            );
            Ok(UNHEALTHY)
        }
    }
}

/// `http://<listen>/livez`, with an unspecified listen address (`0.0.0.0`, `[::]`) read as
/// the loopback address of the same family.
#[must_use]
pub fn default_url(listen: SocketAddr) -> Uri {
    let ip = match listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    let addr = SocketAddr::new(ip, listen.port());
    format!("http://{addr}{DEFAULT_PATH}")
        .parse()
        .expect("an IP address, a port and a fixed path form a valid URI")
}

fn parse_url(url: &str) -> Result<Uri, CmdError> {
    let uri: Uri = url.parse().map_err(|e| {
        usage(format!(
            "--url {url:?} is not a URL: {e} (e.g. http://127.0.0.1:9477/livez)"
        ))
    })?;
    if uri.scheme_str() != Some("http") || uri.authority().is_none() {
        return Err(usage(format!(
            "--url {url:?}: only http://HOST:PORT/PATH is supported (e.g. http://127.0.0.1:9477/livez)"
        )));
    }
    Ok(uri)
}

fn usage(message: String) -> CmdError {
    CmdError::Usage(message)
}

async fn get(
    uri: &Uri,
) -> Result<(hyper::StatusCode, String), Box<dyn std::error::Error + Send + Sync>> {
    let authority = uri.authority().expect("checked: the URL has a host");
    let port = authority.port_u16().unwrap_or(80);
    let stream = TcpStream::connect((authority.host().trim_matches(['[', ']']), port)).await?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    let driver = tokio::spawn(conn);
    let request = Request::get(uri.path_and_query().map_or("/", |p| p.as_str()))
        .header(hyper::header::HOST, authority.as_str())
        .header(hyper::header::CONNECTION, "close")
        .body(Empty::<Bytes>::new())?;
    let response = sender.send_request(request).await?;
    let status = response.status();
    // The agent's health answers are one short line; read at most 4 KiB of anything else.
    let body = http_body_util::Limited::new(response.into_body(), 4096)
        .collect()
        .await?;
    driver.abort();
    Ok((
        status,
        String::from_utf8_lossy(&body.to_bytes()).into_owned(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_url_reads_unspecified_addresses_as_loopback() {
        let url = |s: &str| default_url(s.parse().expect("addr")).to_string();
        assert_eq!(url("0.0.0.0:9477"), "http://127.0.0.1:9477/livez");
        assert_eq!(url("[::]:9000"), "http://[::1]:9000/livez");
        assert_eq!(url("10.1.2.3:9477"), "http://10.1.2.3:9477/livez");
    }

    #[test]
    fn only_plain_http_urls_are_accepted() {
        assert!(parse_url("http://127.0.0.1:9477/healthz").is_ok());
        for bad in ["https://x:1/livez", "127.0.0.1:9477", "not a url", "/livez"] {
            let err = parse_url(bad).expect_err(bad).to_string();
            assert!(err.contains("--url"), "{bad}: {err}");
        }
    }
}
