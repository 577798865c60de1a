//! Connection-level failures (refused, reset, no socket, permission denied), found as an
//! `io::Error` anywhere in an error's source chain, with the hint that fixes each.

use bollard::errors::Error as BollardError;

use crate::engine::EngineError;

pub(super) const HINT_NOT_RUNNING: &str =
    "is the docker daemon running? start it or set DOCKER_HOST";
pub(super) const HINT_PERMISSION: &str = "is this user in the docker group?";
pub(super) const HINT_WRONG_HOST: &str = "wrong DOCKER_HOST?";
pub(super) const HINT_SCHEME: &str =
    "use unix:///path/to/docker.sock, tcp://host:port or https://host:port";

/// Connection-level failures, found as an `io::Error` anywhere in the source chain.
pub(super) fn classify_transport(
    err: &BollardError,
    host: &str,
    timeout_secs: u64,
    what: &str,
) -> Option<EngineError> {
    use std::io::ErrorKind as K;
    let io = io_error_in_chain(err)?;
    let tcp = !(host.starts_with("unix://") || host.starts_with('/'));
    let hint = match io.kind() {
        K::TimedOut => {
            return Some(EngineError::Timeout {
                host: host.to_owned(),
                seconds: timeout_secs,
                what: what.to_owned(),
            });
        }
        K::PermissionDenied => HINT_PERMISSION,
        K::ConnectionRefused if tcp => HINT_WRONG_HOST,
        K::NotFound
        | K::ConnectionRefused
        | K::ConnectionReset
        | K::ConnectionAborted
        | K::BrokenPipe
        | K::NotConnected
        | K::UnexpectedEof => HINT_NOT_RUNNING,
        K::AddrNotAvailable | K::HostUnreachable | K::NetworkUnreachable => HINT_WRONG_HOST,
        _ => return None,
    };
    Some(EngineError::Unreachable {
        host: host.to_owned(),
        cause: os_error_text(io),
        hint: hint.to_owned(),
    })
}

pub(super) fn io_error_in_chain(err: &BollardError) -> Option<&std::io::Error> {
    // `IOError` is `#[error(transparent)]`: its `source()` skips the io::Error itself.
    if let BollardError::IOError { err } = err {
        return Some(err);
    }
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = cur {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            return Some(io);
        }
        cur = e.source();
    }
    None
}

/// `Connection refused (os error 111)` → `connection refused`.
pub(super) fn os_error_text(io: &std::io::Error) -> String {
    let text = io.to_string();
    let text = match text.rfind(" (os error ") {
        Some(i) if text.ends_with(')') => &text[..i],
        _ => text.as_str(),
    };
    let mut chars = text.chars();
    chars.next().map_or_else(String::new, |first| {
        first.to_lowercase().chain(chars).collect()
    })
}
