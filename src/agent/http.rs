//! The agent's HTTP listener (hyper 1): `/metrics` (`OpenMetrics` text), `/healthz`
//! (200 `ok`, or 503 with a one-line reason), 404 elsewhere. Read-only; decides nothing.
//! Connection limits (count, header timeout and size) are in [`limits`].

pub mod limits;

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::telemetry::Telemetry;

const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
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
                        let response = respond(&telemetry, req.method(), req.uri().path());
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

/// The answer to one request.
#[must_use]
pub fn respond(telemetry: &Telemetry, method: &Method, path: &str) -> Response<Full<Bytes>> {
    if path != "/metrics" && path != "/healthz" {
        return reply(
            StatusCode::NOT_FOUND,
            TEXT,
            "not found: try /metrics or /healthz\n".into(),
        );
    }
    if method != Method::GET && method != Method::HEAD {
        return reply(StatusCode::METHOD_NOT_ALLOWED, TEXT, "use GET\n".into());
    }
    if path == "/metrics" {
        return reply(StatusCode::OK, OPENMETRICS, telemetry.metrics.encode());
    }
    match telemetry.health() {
        Ok(()) => reply(StatusCode::OK, TEXT, "ok\n".into()),
        Err(reason) => reply(StatusCode::SERVICE_UNAVAILABLE, TEXT, format!("{reason}\n")),
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

    #[test]
    fn routes() {
        let t = Telemetry::new();
        assert_eq!(
            respond(&t, &Method::GET, "/nope").status(),
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            respond(&t, &Method::POST, "/metrics").status(),
            StatusCode::METHOD_NOT_ALLOWED
        );
        assert_eq!(
            respond(&t, &Method::GET, "/metrics").status(),
            StatusCode::OK
        );
        assert_eq!(
            respond(&t, &Method::GET, "/healthz").status(),
            StatusCode::SERVICE_UNAVAILABLE
        );
        t.engine_reachable("x");
        assert_eq!(
            respond(&t, &Method::GET, "/healthz").status(),
            StatusCode::OK
        );
    }
}
