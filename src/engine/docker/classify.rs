//! bollard's errors → [`EngineError`], by what the caller should do: not found, conflict
//! (refused), unreachable (with the hint that fixes it), timeout, garbled, other.

use bollard::errors::Error as BollardError;

use super::transport::{HINT_NOT_RUNNING, HINT_SCHEME, classify_transport};
use super::{podman, protocol, tls};
use crate::engine::EngineError;

/// Classify a bollard error by what the caller should do about it.
pub(super) fn classify(
    err: BollardError,
    host: &str,
    timeout_secs: u64,
    what: &str,
) -> EngineError {
    let unreachable = |cause: String, hint: &str| EngineError::Unreachable {
        host: host.to_owned(),
        cause,
        hint: hint.to_owned(),
    };
    match err {
        BollardError::DockerResponseServerError {
            status_code: 404,
            message,
        } => EngineError::NotFound(message),
        BollardError::DockerResponseServerError {
            status_code: 409,
            message,
        } => EngineError::Conflict(message),
        BollardError::DockerResponseServerError {
            status_code,
            message,
        } if podman::is_refusal(status_code, &message) => EngineError::Conflict(message),
        BollardError::DockerResponseServerError {
            status_code: 400,
            message,
        } if message.contains("HTTPS server") => {
            unreachable(tls::CAUSE_WANTS_TLS.to_owned(), tls::HINT_WANTS_TLS)
        }
        BollardError::RequestTimeoutError => EngineError::Timeout {
            host: host.to_owned(),
            seconds: timeout_secs,
            what: what.to_owned(),
        },
        BollardError::SocketNotFoundError(_) => {
            unreachable("no such file or directory".to_owned(), HINT_NOT_RUNNING)
        }
        BollardError::UnsupportedURISchemeError { uri } => {
            unreachable(format!("cannot use {uri}"), HINT_SCHEME)
        }
        other => tls::classify_handshake(&other, host)
            .or_else(|| classify_transport(&other, host, timeout_secs, what))
            .or_else(|| protocol::classify(&other, host, what))
            .unwrap_or_else(|| EngineError::Other(format!("{what} at {host}: {other}"))),
    }
}

#[cfg(test)]
mod tests {
    use std::io;

    use super::*;
    use crate::engine::docker::connect::client_for;
    use crate::engine::docker::tls::TlsSettings;
    use crate::engine::docker::transport::{HINT_PERMISSION, HINT_WRONG_HOST};

    const UNIX: &str = "unix:///run/x/docker.sock";
    const TCP: &str = "tcp://127.0.0.1:1";

    fn server(status_code: u16, message: &str) -> BollardError {
        BollardError::DockerResponseServerError {
            status_code,
            message: message.to_owned(),
        }
    }

    fn io_err(kind: io::ErrorKind, text: &str) -> BollardError {
        BollardError::IOError {
            err: io::Error::new(kind, text),
        }
    }

    fn hint_of(e: &EngineError) -> &str {
        match e {
            EngineError::Unreachable { hint, .. } => hint,
            other => panic!("expected Unreachable, got {other:?}"),
        }
    }

    #[test]
    fn classify_maps_status_codes() {
        let e = classify(
            server(404, "No such image: x:1"),
            UNIX,
            5,
            "remove image x:1",
        );
        assert_eq!(e, EngineError::NotFound("No such image: x:1".into()));
        let msg = "conflict: unable to remove repository reference \"x:1\" (must force)";
        let e = classify(server(409, msg), UNIX, 5, "remove image x:1");
        assert_eq!(e, EngineError::Conflict(msg.into()));
        let e = classify(server(500, "boom"), UNIX, 5, "list images");
        assert!(
            matches!(&e, EngineError::Other(m) if m.contains("boom") && m.contains("list images")),
            "{e:?}"
        );
    }

    #[test]
    fn podman_multi_tag_delete_by_id_is_a_conflict() {
        let msg = "unable to delete image \"1f15\" by ID with more than one tag ([a:1 b:1]): please force removal";
        let e = classify(server(500, msg), UNIX, 5, "remove image 1f15");
        assert_eq!(e, EngineError::Conflict(msg.into()));
    }

    #[test]
    fn classify_maps_timeouts() {
        let e = classify(BollardError::RequestTimeoutError, UNIX, 7, "list images");
        assert_eq!(
            e,
            EngineError::Timeout {
                host: UNIX.into(),
                seconds: 7,
                what: "list images".into()
            }
        );
        let e = classify(io_err(io::ErrorKind::TimedOut, "timed out"), TCP, 3, "ping");
        assert_eq!(
            e,
            EngineError::Timeout {
                host: TCP.into(),
                seconds: 3,
                what: "ping".into()
            }
        );
    }

    #[test]
    fn classify_gives_hints_for_connection_failures() {
        let missing = classify(
            BollardError::SocketNotFoundError("/run/x".into()),
            UNIX,
            5,
            "connect",
        );
        assert_eq!(hint_of(&missing), HINT_NOT_RUNNING);
        let denied = classify(
            io_err(io::ErrorKind::PermissionDenied, "Permission denied"),
            UNIX,
            5,
            "ping",
        );
        assert_eq!(hint_of(&denied), HINT_PERMISSION);
        let refused_tcp = classify(
            io_err(io::ErrorKind::ConnectionRefused, "refused"),
            TCP,
            5,
            "ping",
        );
        assert_eq!(hint_of(&refused_tcp), HINT_WRONG_HOST);
        let refused_unix = classify(
            io_err(io::ErrorKind::ConnectionRefused, "refused"),
            UNIX,
            5,
            "ping",
        );
        assert_eq!(hint_of(&refused_unix), HINT_NOT_RUNNING);
        let scheme = client_for("ssh://h", 5, 4, &TlsSettings::default()).expect_err("unsupported");
        assert_eq!(hint_of(&scheme), HINT_SCHEME);
    }

    #[test]
    fn classify_renders_os_error_text_lowercase() {
        let err = BollardError::IOError {
            err: io::Error::from_raw_os_error(111),
        };
        let e = classify(err, TCP, 5, "ping");
        assert_eq!(
            e.to_string(),
            "cannot reach docker at tcp://127.0.0.1:1: connection refused (wrong DOCKER_HOST?)"
        );
    }

    #[test]
    fn other_io_errors_are_other() {
        let e = classify(
            io_err(io::ErrorKind::InvalidData, "bad"),
            UNIX,
            5,
            "list images",
        );
        assert!(matches!(e, EngineError::Other(_)), "{e:?}");
    }

    #[test]
    fn plain_http_to_a_tls_daemon_says_so() {
        let msg = "Client sent an HTTP request to an HTTPS server.";
        let e = classify(server(400, msg), TCP, 5, "ping");
        assert_eq!(hint_of(&e), tls::HINT_WANTS_TLS);
    }
}
