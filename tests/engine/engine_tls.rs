//! `connect_with` over TLS against a private dockerd that this test starts itself with
//! `--tlsverify` on a free `tcp://127.0.0.1` port, with a CA, server and client certificates
//! made by `openssl` in a temp dir. Needs root, `dockerd` and `openssl`; fails (never skips)
//! when it cannot start the daemon. Needs no `DOCKER_HOST`.

use crate::support;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use stagesweep::config::DockerConfig;
use stagesweep::engine::docker::{TlsSettings, connect_with};
use stagesweep::engine::{Engine, EngineError};
use tempfile::TempDir;

/// How long the daemon may take to answer `/_ping` on its unix socket.
const START_TIMEOUT: Duration = Duration::from_secs(15);

fn run(cmd: &mut Command) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e} (is openssl installed?)"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn openssl(dir: &Path, args: &[&str]) {
    run(Command::new("openssl").current_dir(dir).args(args));
}

const EC: [&str; 4] = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"];

/// A self-signed CA: `<name>.pem` and `<name>-key.pem` in `dir`.
fn make_ca(dir: &Path, name: &str) {
    let (cert, key, subj) = (
        format!("{name}.pem"),
        format!("{name}-key.pem"),
        format!("/CN={name}"),
    );
    let mut args = vec!["req", "-x509", "-nodes", "-days", "1", "-subj", &subj];
    args.extend(EC);
    args.extend(["-keyout", &key, "-out", &cert]);
    args.extend(["-addext", "basicConstraints=critical,CA:TRUE"]);
    args.extend(["-addext", "keyUsage=critical,keyCertSign,cRLSign"]);
    openssl(dir, &args);
}

/// A leaf `<name>-cert.pem` / `<name>-key.pem` signed by CA `ca`, with extensions `ext`.
fn make_leaf(dir: &Path, ca: &str, name: &str, ext: &str) {
    let (key, csr, cert, extfile) = (
        format!("{name}-key.pem"),
        format!("{name}.csr"),
        format!("{name}-cert.pem"),
        format!("{name}.ext"),
    );
    std::fs::write(dir.join(&extfile), ext).expect("write ext file");
    let subj = format!("/CN={name}");
    let mut args = vec!["req", "-nodes", "-subj", &subj];
    args.extend(EC);
    args.extend(["-keyout", &key, "-out", &csr]);
    openssl(dir, &args);
    let (ca_cert, ca_key) = (format!("{ca}.pem"), format!("{ca}-key.pem"));
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            &ca_cert,
            "-CAkey",
            &ca_key,
            "-CAcreateserial",
            "-days",
            "1",
            "-out",
            &cert,
            "-extfile",
            &extfile,
        ],
    );
}

/// A `DOCKER_CERT_PATH`-style directory `dir/<name>` with the given files as ca/cert/key.pem.
fn cert_dir(dir: &Path, name: &str, ca: &str, cert: &str, key: &str) -> PathBuf {
    let out = dir.join(name);
    std::fs::create_dir_all(&out).expect("create cert dir");
    for (from, to) in [(ca, "ca.pem"), (cert, "cert.pem"), (key, "key.pem")] {
        std::fs::copy(dir.join(from), out.join(to)).expect("copy certificate");
    }
    out
}

/// A private dockerd with TLS on `tcp://127.0.0.1:<port>`; stopped and cleaned up on drop.
struct TlsDaemon {
    child: Child,
    dir: PathBuf,
    host: String,
}

impl TlsDaemon {
    fn start(dir: &Path, certs: &Path) -> TlsDaemon {
        let port = support::http::free_port();
        let host = format!("tcp://127.0.0.1:{port}");
        let sock = dir.join("docker.sock");
        std::fs::write(dir.join("daemon.json"), "{}").expect("write daemon.json");
        let log = std::fs::File::create(dir.join("dockerd.log")).expect("create dockerd.log");
        let p = |name: &str| dir.join(name).display().to_string();
        let child = Command::new("dockerd")
            .args(["--config-file", &p("daemon.json")])
            .args(["--data-root", &p("data"), "--exec-root", &p("exec")])
            .args(["--pidfile", &p("docker.pid")])
            .args(["-H", &format!("unix://{}", sock.display()), "-H", &host])
            .args(["--iptables=false", "--ip-masq=false", "--bridge=none"])
            .arg("--tlsverify")
            .args(["--tlscacert", &certs.join("ca.pem").display().to_string()])
            .args([
                "--tlscert",
                &certs.join("server-cert.pem").display().to_string(),
            ])
            .args([
                "--tlskey",
                &certs.join("server-key.pem").display().to_string(),
            ])
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone log handle"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start dockerd: {e} (this test needs root and dockerd installed)")
            });
        let mut daemon = TlsDaemon {
            child,
            dir: dir.to_owned(),
            host,
        };
        daemon.wait_ready(&sock);
        daemon
    }

    fn wait_ready(&mut self, sock: &Path) {
        let deadline = Instant::now() + START_TIMEOUT;
        while !ping_unix(sock) {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "dockerd exited during start-up ({status}):\n{}",
                    self.log_tail()
                );
            }
            assert!(
                Instant::now() < deadline,
                "dockerd did not answer /_ping within {START_TIMEOUT:?}:\n{}",
                self.log_tail()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.dir.join("dockerd.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }
}

impl Drop for TlsDaemon {
    fn drop(&mut self) {
        // SIGTERM lets dockerd stop its containerd; reap it here so that the stop script
        // does not wait on a zombie, then let the script unmount leftovers and delete DIR.
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/dockerd.sh");
        let _ = Command::new(script).arg("stop").arg(&self.dir).status();
    }
}

/// `GET /_ping` over the daemon's unix socket (plain HTTP/1.0, answers `OK`).
fn ping_unix(sock: &Path) -> bool {
    let Ok(mut s) = UnixStream::connect(sock) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let mut answer = String::new();
    s.write_all(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
        .is_ok()
        && s.read_to_string(&mut answer).is_ok()
        && answer.starts_with("HTTP/1.0 200")
        && answer.ends_with("OK")
}

fn cfg(host: &str) -> DockerConfig {
    DockerConfig {
        host: Some(host.to_owned()),
        timeout: Duration::from_secs(5),
        ..DockerConfig::default()
    }
}

fn unreachable_parts(e: EngineError) -> (String, String) {
    match e {
        EngineError::Unreachable { cause, hint, .. } => (cause, hint),
        other => panic!("expected Unreachable, got {other:?}"),
    }
}

/// Good, wrong-CA, untrusted-client and plain-HTTP connections to one TLS daemon.
///
/// Runs in the docker20 lane only: it starts a Debian dockerd 20.10 of its own, whatever
/// engine the lane tests, so the other lanes would only repeat it.
#[tokio::test(flavor = "multi_thread")]
async fn tls_daemon_accepts_verified_clients_only() {
    let engine = support::matrix::engine();
    if support::matrix::skip_if(
        engine != support::matrix::Matrix::Docker20,
        "starts a dockerd 20.10 of its own with --tlsverify; the engine under test plays no part",
    ) {
        return;
    }
    let tmp = TempDir::new().expect("temp dir");
    let pki = tmp.path().join("pki");
    std::fs::create_dir(&pki).expect("create pki dir");
    make_ca(&pki, "ca");
    make_ca(&pki, "other-ca");
    make_leaf(
        &pki,
        "ca",
        "server",
        "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
    );
    make_leaf(&pki, "ca", "client", "extendedKeyUsage=clientAuth\n");
    make_leaf(
        &pki,
        "other-ca",
        "stranger",
        "extendedKeyUsage=clientAuth\n",
    );
    let good = cert_dir(&pki, "good", "ca.pem", "client-cert.pem", "client-key.pem");
    let wrong_ca = cert_dir(
        &pki,
        "wrong-ca",
        "other-ca.pem",
        "client-cert.pem",
        "client-key.pem",
    );
    let stranger = cert_dir(
        &pki,
        "stranger",
        "ca.pem",
        "stranger-cert.pem",
        "stranger-key.pem",
    );

    let daemon_dir = tmp.path().join("d");
    std::fs::create_dir(&daemon_dir).expect("create daemon dir");
    let daemon = TlsDaemon::start(&daemon_dir, &pki);
    let host = daemon.host.as_str();

    let engine = connect_with(&cfg(host), &TlsSettings::verify_with(&good))
        .await
        .expect("connect over TLS");
    engine.ping().await.expect("ping over TLS");
    engine.list_images().await.expect("list images over TLS");
    assert!(engine.describe().contains(host), "{}", engine.describe());
    // `https://` means TLS whatever DOCKER_TLS_VERIFY says.
    let https = host.replace("tcp://", "https://");
    let plain_settings = TlsSettings {
        verify: false,
        cert_dir: Some(good.clone()),
    };
    connect_with(&cfg(&https), &plain_settings)
        .await
        .expect("connect over https://");

    let started = Instant::now();
    let e = connect_with(&cfg(host), &TlsSettings::verify_with(&wrong_ca))
        .await
        .expect_err("a daemon certificate from another CA must be rejected");
    let (cause, hint) = unreachable_parts(e);
    assert!(cause.contains("tls handshake failed"), "{cause}");
    assert!(cause.contains("UnknownIssuer"), "{cause}");
    assert!(hint.contains("ca.pem"), "{hint}");
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "rejection took {:?}",
        started.elapsed()
    );

    let e = connect_with(&cfg(host), &TlsSettings::verify_with(&stranger))
        .await
        .expect_err("a client certificate from another CA must be refused by the daemon");
    let (cause, hint) = unreachable_parts(e);
    assert!(cause.contains("tls handshake failed"), "{cause}");
    assert!(hint.contains("cert.pem"), "{hint}");

    let e = connect_with(&cfg(host), &plain_settings)
        .await
        .expect_err("plain HTTP to a TLS daemon fails");
    let (_, hint) = unreachable_parts(e);
    assert!(hint.contains("DOCKER_TLS_VERIFY=1"), "{hint}");
    drop(daemon);
}

#[tokio::test]
async fn missing_cert_dir_names_the_file_and_the_way_out() {
    let tmp = TempDir::new().expect("temp dir");
    let missing = tmp.path().join("no-certs");
    let e = connect_with(
        &cfg("tcp://127.0.0.1:2376"),
        &TlsSettings::verify_with(&missing),
    )
    .await
    .expect_err("no certificates");
    assert_eq!(
        e.to_string(),
        format!(
            "cannot reach docker at tcp://127.0.0.1:2376: cannot read the TLS CA certificate \
             {}: no such file or directory (set DOCKER_CERT_PATH to the directory holding \
             ca.pem, cert.pem and key.pem)",
            missing.join("ca.pem").display()
        )
    );
    // With ca.pem present, the client pair is checked too (bollard would silently send none).
    std::fs::create_dir(&missing).expect("create cert dir");
    std::fs::write(missing.join("ca.pem"), "not a certificate").expect("write ca.pem");
    let e = connect_with(
        &cfg("tcp://127.0.0.1:2376"),
        &TlsSettings::verify_with(&missing),
    )
    .await
    .expect_err("bad ca.pem");
    assert!(e.to_string().contains("holds no PEM certificate"), "{e}");
    let pem = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
    std::fs::write(missing.join("ca.pem"), pem).expect("write ca.pem");
    let e = connect_with(
        &cfg("tcp://127.0.0.1:2376"),
        &TlsSettings::verify_with(&missing),
    )
    .await
    .expect_err("no cert.pem");
    let (cause, hint) = unreachable_parts(e);
    assert_eq!(
        cause,
        format!(
            "cannot read the TLS client certificate {}: no such file or directory",
            missing.join("cert.pem").display()
        )
    );
    assert!(hint.starts_with("set DOCKER_CERT_PATH"), "{hint}");
}
