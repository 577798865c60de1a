//! Context resolution against a temporary `DOCKER_CONFIG` directory laid out as the docker
//! CLI lays it out; variables come from a map, never from the process environment.

use std::collections::HashMap;

use super::*;

/// A temporary docker config directory.
struct Store(tempfile::TempDir);

impl Store {
    fn new() -> Self {
        Store(tempfile::tempdir().expect("temp dir"))
    }

    fn dir(&self) -> &Path {
        self.0.path()
    }

    fn current(&self, name: &str) -> &Self {
        let text = format!(r#"{{"auths": {{}}, "currentContext": "{name}"}}"#);
        std::fs::write(self.dir().join("config.json"), text).expect("write config.json");
        self
    }

    /// What `docker context create NAME --docker host=HOST` writes.
    fn context(&self, name: &str, endpoint: &str) -> &Self {
        let id = hex::encode(Sha256::digest(name.as_bytes()));
        let dir = self.dir().join("contexts/meta").join(id);
        std::fs::create_dir_all(&dir).expect("mkdir");
        let meta = format!(
            r#"{{"Name":"{name}","Metadata":{{"Description":""}},"Endpoints":{{"docker":{endpoint}}}}}"#
        );
        std::fs::write(dir.join("meta.json"), meta).expect("write meta.json");
        self
    }

    fn host_context(&self, name: &str, host: &str) -> &Self {
        self.context(
            name,
            &format!(r#"{{"Host":"{host}","SkipTLSVerify":false}}"#),
        )
    }

    fn tls(&self, name: &str) -> PathBuf {
        let id = hex::encode(Sha256::digest(name.as_bytes()));
        let dir = self.dir().join("contexts/tls").join(id).join("docker");
        std::fs::create_dir_all(&dir).expect("mkdir");
        for f in ["ca.pem", "cert.pem", "key.pem"] {
            std::fs::write(dir.join(f), "").expect("write pem");
        }
        dir
    }

    fn resolve(
        &self,
        config_host: Option<&str>,
        vars: &[(&str, &str)],
    ) -> Result<Endpoint, ContextError> {
        let mut map: HashMap<String, OsString> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), OsString::from(v)))
            .collect();
        map.entry("DOCKER_CONFIG".into())
            .or_insert_with(|| self.dir().as_os_str().to_owned());
        Endpoint::resolve(config_host, &|name| map.get(name).cloned())
    }
}

const REMOTE: &str = "tcp://build-1.example:2375";

#[test]
fn without_anything_the_local_socket() {
    let store = Store::new();
    let e = store.resolve(None, &[]).expect("resolves");
    assert_eq!(e.host, DEFAULT_HOST);
    assert_eq!(e.source, Source::Default);
    assert_eq!(e.context(), None);
}

#[test]
fn current_context_from_config_json_is_honoured() {
    let store = Store::new();
    store.host_context("remote", REMOTE).current("remote");
    let e = store.resolve(None, &[]).expect("resolves");
    assert_eq!(e.host, REMOTE);
    assert_eq!(e.context(), Some("remote"));
    assert!(!e.tls.verify);
    assert!(
        e.source.to_string().contains("currentContext in"),
        "{}",
        e.source
    );
}

#[test]
fn precedence_is_config_then_docker_host_then_docker_context_then_current_context() {
    let store = Store::new();
    store
        .host_context("remote", REMOTE)
        .host_context("other", "tcp://other:2375")
        .current("remote");
    let by_var = store
        .resolve(None, &[("DOCKER_CONTEXT", "other")])
        .expect("resolves");
    assert_eq!(by_var.host, "tcp://other:2375");
    assert_eq!(
        by_var.source,
        Source::Context {
            name: "other".into(),
            named_by: "DOCKER_CONTEXT".into()
        }
    );
    let vars = [
        ("DOCKER_CONTEXT", "other"),
        ("DOCKER_HOST", "unix:///run/x.sock"),
    ];
    let by_host = store.resolve(None, &vars).expect("resolves");
    assert_eq!(by_host.host, "unix:///run/x.sock");
    assert_eq!(by_host.source, Source::DockerHost);
    let by_config = store
        .resolve(Some("unix:///run/cfg.sock"), &vars)
        .expect("resolves");
    assert_eq!(by_config.host, "unix:///run/cfg.sock");
    assert_eq!(by_config.source, Source::Config);
}

#[test]
fn the_default_context_means_no_context() {
    let store = Store::new();
    store.current("default");
    assert_eq!(
        store.resolve(None, &[]).expect("ok").source,
        Source::Default
    );
    let e = store
        .resolve(None, &[("DOCKER_CONTEXT", "default")])
        .expect("ok");
    assert_eq!(e.host, DEFAULT_HOST);
}

#[test]
fn an_empty_docker_host_does_not_count() {
    let store = Store::new();
    store.host_context("remote", REMOTE).current("remote");
    let e = store.resolve(None, &[("DOCKER_HOST", "")]).expect("ok");
    assert_eq!(e.host, REMOTE);
}

#[test]
fn a_missing_context_is_an_error_naming_what_chose_it() {
    let store = Store::new();
    store.current("gone");
    let err = store.resolve(None, &[]).expect_err("no such context");
    assert!(matches!(err, ContextError::NotFound { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains("\"gone\"") && text.contains("currentContext in"),
        "{text}"
    );
    assert!(text.contains("docker context use"), "{text}");
    let err = store
        .resolve(None, &[("DOCKER_CONTEXT", "nope")])
        .expect_err("no such context");
    assert!(err.to_string().contains("named by DOCKER_CONTEXT"), "{err}");
}

#[test]
fn ssh_hosts_are_refused_with_a_way_out() {
    let store = Store::new();
    store
        .host_context("viassh", "ssh://me@build-1")
        .current("viassh");
    let err = store.resolve(None, &[]).expect_err("ssh");
    let text = err.to_string();
    assert!(
        text.contains("ssh://me@build-1") && text.contains("does not support"),
        "{text}"
    );
    assert!(text.contains("docker context \"viassh\""), "{text}");
    let err = store
        .resolve(None, &[("DOCKER_HOST", "ssh://me@build-1")])
        .expect_err("ssh");
    assert!(err.to_string().contains("from DOCKER_HOST"), "{err}");
}

#[test]
fn context_tls_material_is_used_and_env_tls_is_not() {
    let store = Store::new();
    store
        .host_context("secure", "tcp://build-1:2376")
        .current("secure");
    let dir = store.tls("secure");
    let e = store
        .resolve(None, &[("DOCKER_CERT_PATH", "/elsewhere")])
        .expect("ok");
    assert_eq!(e.tls, TlsSettings::verify_with(dir));
    // DOCKER_TLS_VERIFY belongs to DOCKER_HOST and the default context, not to a context.
    store.host_context("plain", REMOTE);
    let e = store
        .resolve(
            None,
            &[("DOCKER_CONTEXT", "plain"), ("DOCKER_TLS_VERIFY", "1")],
        )
        .expect("ok");
    assert!(!e.tls.verify);
}

#[test]
fn skip_tls_verify_and_endpointless_contexts_are_errors() {
    let store = Store::new();
    store.context("lax", r#"{"Host":"tcp://x:2376","SkipTLSVerify":true}"#);
    let err = store
        .resolve(None, &[("DOCKER_CONTEXT", "lax")])
        .expect_err("skip verify");
    assert!(matches!(err, ContextError::SkipTlsVerify { .. }), "{err:?}");
    let id = hex::encode(Sha256::digest(b"k8s"));
    let dir = store.dir().join("contexts/meta").join(id);
    std::fs::create_dir_all(&dir).expect("mkdir");
    std::fs::write(dir.join("meta.json"), r#"{"Name":"k8s","Endpoints":{}}"#).expect("write");
    let err = store
        .resolve(None, &[("DOCKER_CONTEXT", "k8s")])
        .expect_err("no endpoint");
    assert!(matches!(err, ContextError::NoEndpoint { .. }), "{err:?}");
}

#[test]
fn a_broken_config_json_is_reported_with_its_path() {
    let store = Store::new();
    std::fs::write(store.dir().join("config.json"), "{not json").expect("write");
    let err = store.resolve(None, &[]).expect_err("broken");
    let text = err.to_string();
    assert!(
        text.contains("config.json") && text.contains("DOCKER_CONFIG"),
        "{text}"
    );
}

#[test]
fn home_is_the_fallback_config_directory() {
    let home = tempfile::tempdir().expect("temp dir");
    let docker_dir = home.path().join(".docker");
    std::fs::create_dir_all(&docker_dir).expect("mkdir");
    let store = Store(tempfile::TempDir::new_in(&docker_dir).expect("dir"));
    // The store's helpers write under its own directory; move that layout to ~/.docker.
    store.host_context("remote", REMOTE).current("remote");
    std::fs::rename(store.dir().join("contexts"), docker_dir.join("contexts")).expect("mv");
    std::fs::rename(
        store.dir().join("config.json"),
        docker_dir.join("config.json"),
    )
    .expect("mv");
    let home_var = home.path().as_os_str().to_owned();
    let e = Endpoint::resolve(None, &|name| (name == "HOME").then(|| home_var.clone()))
        .expect("resolves");
    assert_eq!(e.host, REMOTE);
}
