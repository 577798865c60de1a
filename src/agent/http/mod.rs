//! The agent's HTTP listener (hyper 1): `/metrics` (Prometheus text 0.0.4 or `OpenMetrics`,
//! by the `Accept` header), `/healthz` (readiness: 200 `ok`, or 503 with a one-line reason),
//! `/livez` (liveness: the loop is turning), 404 elsewhere. Read-only; decides nothing.
//! Connection limits (count, header timeout and size) are in [`limits`].

pub mod limits;

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{ACCEPT, CONTENT_TYPE, HeaderValue};
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::exposition::Format;
use super::telemetry::Telemetry;

const TEXT: &str = "text/plain; charset=utf-8";

/// Serve connections from `listener` until `stop` fires, within [`limits`].
pub async fn serve(listener: TcpListener, telemetry: Arc<Telemetry>, stop: CancellationToken) {
    let connections = limits::Connections::default();
    loop {
        let accepted = tokio::select! {
            () = stop.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, peer)) => {
                let Some(slot) = connections.try_open() else {
                    // Closed at once (dropped): the cap keeps memory and descriptors bounded.
                    tracing::debug!(%peer, "metrics listener at its connection cap; closing");
                    continue;
                };
                let telemetry = Arc::clone(&telemetry);
                tokio::spawn(async move {
                    let service = service_fn(move |req: Request<Incoming>| {
                        let accept = req.headers().get(ACCEPT).and_then(|v| v.to_str().ok());
                        let response = respond(&telemetry, req.method(), req.uri().path(), accept);
                        async move { Ok::<_, Infallible>(response) }
                    });
                    let conn =
                        limits::builder(&slot).serve_connection(TokioIo::new(stream), service);
                    if let Err(e) = conn.await {
                        tracing::debug!(error = %e, "metrics connection ended with an error");
                    }
                    drop(slot);
                });
            }
            Err(e) => {
                // Out of file descriptors and the like: wait a little rather than spin.
                tracing::warn!(error = %e, "cannot accept a metrics connection");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}

/// The answer to one request; `accept` is its `Accept` header.
#[must_use]
pub fn respond(
    telemetry: &Telemetry,
    method: &Method,
    path: &str,
    accept: Option<&str>,
) -> Response<Full<Bytes>> {
    if !["/metrics", "/healthz", "/livez"].contains(&path) {
        return reply(
            StatusCode::NOT_FOUND,
            TEXT,
            "not found: try /metrics, /healthz or /livez\n".into(),
        );
    }
    if method != Method::GET && method != Method::HEAD {
        return reply(StatusCode::METHOD_NOT_ALLOWED, TEXT, "use GET\n".into());
    }
    let (check, detail) = match path {
        "/metrics" => {
            let format = Format::negotiate(accept);
            let body = telemetry.metrics.encode_as(format);
            return reply(StatusCode::OK, format.content_type(), body);
        }
        "/livez" => (telemetry.liveness(), None),
        _ => (telemetry.health(), telemetry.health_detail()),
    };
    // The first line is the verdict (`ok` or the reason); details follow on their own lines.
    let detail = detail.map(|d| format!("{d}\n")).unwrap_or_default();
    match check {
        Ok(()) => reply(StatusCode::OK, TEXT, format!("ok\n{detail}")),
        Err(reason) => reply(
            StatusCode::SERVICE_UNAVAILABLE,
            TEXT,
            format!("{reason}\n{detail}"),
        ),
    }
}

fn reply(status: StatusCode, content_type: &'static str, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(t: &Telemetry, path: &str) -> StatusCode {
        respond(t, &Method::GET, path, None).status()
    }

    fn content_type(r: &Response<Full<Bytes>>) -> &str {
        r.headers()[CONTENT_TYPE].to_str().expect("ascii")
    }

    #[test]
    fn routes() {
        let t = Telemetry::new();
        assert_eq!(get(&t, "/nope"), StatusCode::NOT_FOUND);
        assert_eq!(
            respond(&t, &Method::POST, "/metrics", None).status(),
            StatusCode::METHOD_NOT_ALLOWED
        );
        assert_eq!(get(&t, "/metrics"), StatusCode::OK);
        assert_eq!(get(&t, "/healthz"), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(get(&t, "/livez"), StatusCode::OK, "alive while connecting");
        t.engine_reachable("x");
        assert_eq!(get(&t, "/healthz"), StatusCode::OK);
        t.engine_unreachable("gone");
        assert_eq!(get(&t, "/healthz"), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            get(&t, "/livez"),
            StatusCode::OK,
            "docker away is not a reason to restart"
        );
    }

    #[test]
    fn metrics_format_follows_accept() {
        let t = Telemetry::new();
        let plain = respond(&t, &Method::GET, "/metrics", None);
        assert_eq!(
            content_type(&plain),
            "text/plain; version=0.0.4; charset=utf-8"
        );
        let om = respond(
            &t,
            &Method::GET,
            "/metrics",
            Some("application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"),
        );
        assert!(content_type(&om).starts_with("application/openmetrics-text; version=1.0.0"));
    }
}
