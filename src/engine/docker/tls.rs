//! TLS to a remote engine, in the docker CLI's conventions: `DOCKER_TLS_VERIFY` (set and
//! non-empty) turns `tcp://` into TLS, `https://` always means TLS, and the daemon is verified
//! against `ca.pem` while `cert.pem`/`key.pem` are presented, all three from `DOCKER_CERT_PATH`
//! (default: `$DOCKER_CONFIG`, then `~/.docker`).
//!
//! Owns the settings ([`TlsSettings`], read from the environment only by
//! [`TlsSettings::from_env`]), checking the certificate files before connecting (bollard reads
//! the client pair lazily and silently sends none when it cannot), building the rustls client,
//! and explaining handshake failures. Decides nothing about images.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Once;

use bollard::Docker;
use bollard::errors::Error as BollardError;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use super::transport::os_error_text;
use crate::engine::EngineError;

/// Where the certificates are and what to do.
pub(super) const HINT_CERT_PATH: &str =
    "set DOCKER_CERT_PATH to the directory holding ca.pem, cert.pem and key.pem";
const HINT_SERVER_CERT: &str =
    "is ca.pem in DOCKER_CERT_PATH the CA that signed the daemon's certificate?";
const HINT_CLIENT_CERT: &str =
    "the daemon refused cert.pem: was it signed by the CA the daemon trusts (--tlscacert)?";
const HINT_HANDSHAKE: &str =
    "does the daemon serve TLS on this port? for plain tcp unset DOCKER_TLS_VERIFY";
const HINT_NATIVE_ROOTS: &str = "check SSL_CERT_FILE / SSL_CERT_DIR and the system CA store";
/// The daemon answered plain HTTP with "client sent an HTTP request to an HTTPS server".
pub(super) const CAUSE_WANTS_TLS: &str = "the daemon speaks only TLS on this port";
pub(super) const HINT_WANTS_TLS: &str = "set DOCKER_TLS_VERIFY=1 and DOCKER_CERT_PATH to the \
     directory holding ca.pem, cert.pem and key.pem, or use https://";

/// How to talk TLS to a `tcp://` or `https://` engine.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsSettings {
    /// Use TLS for `tcp://` hosts (`DOCKER_TLS_VERIFY` set and non-empty). `https://` hosts
    /// use TLS whatever this says; `unix://` hosts never do.
    pub verify: bool,
    /// The directory holding `ca.pem`, `cert.pem` and `key.pem`; `None` when neither
    /// `DOCKER_CERT_PATH`, `DOCKER_CONFIG` nor a home directory is known.
    pub cert_dir: Option<PathBuf>,
}

impl TlsSettings {
    /// TLS over `tcp://`, with the certificates in `cert_dir`.
    pub fn verify_with(cert_dir: impl Into<PathBuf>) -> Self {
        Self {
            verify: true,
            cert_dir: Some(cert_dir.into()),
        }
    }

    /// The settings the docker CLI would use in this process's environment.
    pub fn from_env() -> Self {
        Self::from_vars(|name| std::env::var_os(name))
    }

    pub(super) fn from_vars(var: impl Fn(&str) -> Option<OsString>) -> Self {
        let set = |name: &str| var(name).filter(|v| !v.is_empty());
        let cert_dir = set("DOCKER_CERT_PATH")
            .map(PathBuf::from)
            .or_else(|| set("DOCKER_CONFIG").map(PathBuf::from))
            .or_else(|| set("HOME").map(|h| Path::new(&h).join(".docker")));
        Self {
            verify: set("DOCKER_TLS_VERIFY").is_some(),
            cert_dir,
        }
    }
}

/// A bollard client talking TLS to `host` (`tcp://…` or `https://…`), after checking that the
/// three certificate files are readable and hold what they should; it keeps up to
/// `concurrency` connections open between calls ([`super::pool`]).
pub(super) fn client(
    host: &str,
    timeout_secs: u64,
    concurrency: usize,
    settings: &TlsSettings,
) -> Result<Docker, EngineError> {
    install_crypto_provider();
    let unreachable = |cause: String, hint: &str| EngineError::Unreachable {
        host: host.to_owned(),
        cause,
        hint: hint.to_owned(),
    };
    let dir = settings.cert_dir.as_deref().ok_or_else(|| {
        unreachable(
            "cannot find the TLS certificates: DOCKER_CERT_PATH is not set and there is no \
             home directory"
                .to_owned(),
            HINT_CERT_PATH,
        )
    })?;
    let (ca, cert, key) = (
        dir.join("ca.pem"),
        dir.join("cert.pem"),
        dir.join("key.pem"),
    );
    check_certificates(&ca, "CA certificate")
        .and_then(|()| check_certificates(&cert, "client certificate"))
        .and_then(|()| check_key(&key))
        .map_err(|cause| unreachable(cause, HINT_CERT_PATH))?;
    let config = client_config(&ca, &cert, &key)
        .map_err(|(cause, hint)| unreachable(format!("cannot set up TLS: {cause}"), hint))?;
    super::pool::https(host, timeout_secs, concurrency, config)
        .map_err(|e| unreachable(format!("cannot set up TLS: {e}"), HINT_CERT_PATH))
}

/// What bollard's own TLS client trusts and presents: the system's CA certificates and
/// `ca.pem`; `cert.pem` with `key.pem` (read once here, where bollard read them at every
/// handshake).
fn client_config(
    ca: &Path,
    cert: &Path,
    key: &Path,
) -> Result<rustls::ClientConfig, (String, &'static str)> {
    let mut roots = rustls::RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    if let Some(e) = native.errors.first() {
        return Err((
            format!("cannot load the system's CA certificates: {e}"),
            HINT_NATIVE_ROOTS,
        ));
    }
    for c in native.certs {
        roots.add(c).map_err(|e| {
            (
                format!("a system CA certificate is unusable: {e}"),
                HINT_NATIVE_ROOTS,
            )
        })?;
    }
    let pem = |path: &Path, what: &str| read(path, what).map_err(|e| (e, HINT_CERT_PATH));
    let unparsable = |path: &Path, e: &dyn std::fmt::Display| {
        (
            format!("cannot parse {}: {e}", path.display()),
            HINT_CERT_PATH,
        )
    };
    let ca_pem = pem(ca, "CA certificate")?;
    for c in CertificateDer::pem_slice_iter(&ca_pem) {
        roots
            .add(c.map_err(|e| unparsable(ca, &e))?)
            .map_err(|e| unparsable(ca, &e))?;
    }
    let chain = CertificateDer::pem_slice_iter(&pem(cert, "client certificate")?)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| unparsable(cert, &e))?;
    let key_der =
        PrivateKeyDer::from_pem_slice(&pem(key, "client key")?).map_err(|e| unparsable(key, &e))?;
    rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key_der)
        .map_err(|e| {
            (
                format!("the client certificate and key do not fit: {e}"),
                HINT_CERT_PATH,
            )
        })
}

/// bollard builds its rustls config with the process-wide default provider; install ring
/// (the only one compiled in) so that a second provider enabled by some other crate's
/// features cannot make that choice ambiguous (rustls would panic).
fn install_crypto_provider() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        // Err means another provider was installed first: that one is used, which is fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

fn read(path: &Path, what: &str) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| {
        format!(
            "cannot read the TLS {what} {}: {}",
            path.display(),
            os_error_text(&e)
        )
    })
}

fn check_certificates(path: &Path, what: &str) -> Result<(), String> {
    let pem = read(path, what)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("cannot parse the TLS {what} {}: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "the TLS {what} {} holds no PEM certificate",
            path.display()
        ));
    }
    Ok(())
}

fn check_key(path: &Path) -> Result<(), String> {
    let pem = read(path, "client key")?;
    PrivateKeyDer::from_pem_slice(&pem)
        .map(drop)
        .map_err(|e| format!("cannot parse the TLS client key {}: {e}", path.display()))
}

/// A connection closed before any answer (hyper's "canceled" or incomplete message, a reset,
/// an early EOF) somewhere in `err`'s chain: on a TLS connection's first request, the daemon
/// refusing our client certificate (TLS 1.3 sends that verdict after the client's side of the
/// handshake is done). The cause, or `None`; a TLS alert is explained by
/// [`classify_handshake`] instead.
pub(super) fn closed_during_handshake(err: &BollardError) -> Option<String> {
    use std::io::ErrorKind as K;
    if rustls_error_in_chain(err).is_some() {
        return None;
    }
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = cur {
        let closed = e
            .downcast_ref::<hyper::Error>()
            .is_some_and(|h| h.is_canceled() || h.is_incomplete_message())
            || e.downcast_ref::<std::io::Error>().is_some_and(|io| {
                matches!(
                    io.kind(),
                    K::ConnectionReset | K::BrokenPipe | K::UnexpectedEof
                )
            });
        if closed {
            return Some(format!(
                "tls handshake failed: the daemon closed the connection ({e})"
            ));
        }
        cur = e.source();
    }
    None
}

/// The error for a TLS daemon that hung up on our first request.
pub(super) fn refused_client(host: &str, cause: String) -> EngineError {
    EngineError::Unreachable {
        host: host.to_owned(),
        cause,
        hint: HINT_CLIENT_CERT.to_owned(),
    }
}

/// A failed TLS handshake anywhere in `err`'s source chain, explained.
pub(super) fn classify_handshake(err: &BollardError, host: &str) -> Option<EngineError> {
    let tls = rustls_error_in_chain(err)?;
    let hint = match tls {
        rustls::Error::InvalidCertificate(_) => HINT_SERVER_CERT,
        rustls::Error::AlertReceived(alert) if is_client_cert_alert(*alert) => HINT_CLIENT_CERT,
        _ => HINT_HANDSHAKE,
    };
    Some(EngineError::Unreachable {
        host: host.to_owned(),
        cause: format!("tls handshake failed: {tls}"),
        hint: hint.to_owned(),
    })
}

fn is_client_cert_alert(alert: rustls::AlertDescription) -> bool {
    use rustls::AlertDescription as A;
    matches!(
        alert,
        A::BadCertificate
            | A::CertificateRequired
            | A::CertificateUnknown
            | A::UnknownCA
            | A::UnsupportedCertificate
            | A::CertificateExpired
            | A::CertificateRevoked
    )
}

/// rustls reports through (nested) `io::Error`s whose payload is the `rustls::Error`, and an
/// `io::Error`'s `source()` skips its payload: follow payloads first, then sources.
fn rustls_error_in_chain(err: &BollardError) -> Option<&rustls::Error> {
    type Dyn = dyn std::error::Error + 'static;
    // `BollardError::IOError` is transparent: its `source()` skips the io::Error itself.
    let mut cur: Option<&Dyn> = match err {
        BollardError::IOError { err } => Some(err),
        other => Some(other),
    };
    while let Some(e) = cur {
        if let Some(tls) = e.downcast_ref::<rustls::Error>() {
            return Some(tls);
        }
        cur = match e
            .downcast_ref::<std::io::Error>()
            .and_then(std::io::Error::get_ref)
        {
            Some(payload) => Some(payload as &Dyn),
            None => e.source(),
        };
    }
    None
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::io;

    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<OsString> {
        let map: HashMap<String, OsString> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), OsString::from(v)))
            .collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn settings_follow_the_docker_cli() {
        let s = TlsSettings::from_vars(vars(&[("HOME", "/home/u")]));
        assert_eq!(s.cert_dir.as_deref(), Some(Path::new("/home/u/.docker")));
        assert!(!s.verify);
        let s = TlsSettings::from_vars(vars(&[
            ("HOME", "/home/u"),
            ("DOCKER_CONFIG", "/cfg"),
            ("DOCKER_TLS_VERIFY", "1"),
        ]));
        assert_eq!(s, TlsSettings::verify_with("/cfg"));
        let s = TlsSettings::from_vars(vars(&[
            ("DOCKER_CONFIG", "/cfg"),
            ("DOCKER_CERT_PATH", "/certs"),
            ("DOCKER_TLS_VERIFY", ""),
        ]));
        assert_eq!(s.cert_dir.as_deref(), Some(Path::new("/certs")));
        assert!(!s.verify, "an empty DOCKER_TLS_VERIFY means no TLS");
        assert_eq!(TlsSettings::from_vars(vars(&[])).cert_dir, None);
    }

    #[test]
    fn missing_cert_file_names_path_and_way_out() {
        let dir = std::env::temp_dir().join("stagesweep-tls-unit-no-such-dir");
        let e = client("tcp://h:2376", 5, 4, &TlsSettings::verify_with(&dir))
            .expect_err("no certificates there");
        let ca = dir.join("ca.pem");
        assert_eq!(
            e.to_string(),
            format!(
                "cannot reach docker at tcp://h:2376: cannot read the TLS CA certificate {}: \
                 no such file or directory ({HINT_CERT_PATH})",
                ca.display()
            )
        );
        let e = client("tcp://h:2376", 5, 4, &TlsSettings::default()).expect_err("no dir");
        assert!(e.to_string().contains("DOCKER_CERT_PATH is not set"), "{e}");
    }

    #[test]
    fn handshake_errors_are_explained() {
        let wrap = |tls: rustls::Error| BollardError::IOError {
            err: io::Error::new(io::ErrorKind::InvalidData, tls),
        };
        let hint = |e: Option<EngineError>| match e {
            Some(EngineError::Unreachable { hint, cause, .. }) => {
                assert!(cause.starts_with("tls handshake failed: "), "{cause}");
                hint
            }
            other => panic!("expected Unreachable, got {other:?}"),
        };
        let bad_ca = wrap(rustls::Error::InvalidCertificate(
            rustls::CertificateError::UnknownIssuer,
        ));
        assert_eq!(
            hint(classify_handshake(&bad_ca, "tcp://h:1")),
            HINT_SERVER_CERT
        );
        let refused = wrap(rustls::Error::AlertReceived(
            rustls::AlertDescription::CertificateRequired,
        ));
        assert_eq!(
            hint(classify_handshake(&refused, "tcp://h:1")),
            HINT_CLIENT_CERT
        );
        let other = wrap(rustls::Error::General("x".into()));
        assert_eq!(
            hint(classify_handshake(&other, "tcp://h:1")),
            HINT_HANDSHAKE
        );
        let plain = BollardError::IOError {
            err: io::Error::new(io::ErrorKind::InvalidData, "bad"),
        };
        assert_eq!(classify_handshake(&plain, "tcp://h:1"), None);
    }
}
