//! Which engine to talk to, resolved as the docker CLI resolves it, so that after
//! `docker context use remote` stagesweep does not silently prune the local daemon instead.
//!
//! Precedence, highest first: `docker.host` in stagesweep's config (like the CLI's `--host`),
//! `DOCKER_HOST`, `DOCKER_CONTEXT`, `currentContext` in `$DOCKER_CONFIG/config.json`
//! (default `~/.docker/config.json`), then the local socket. A context named `default` means
//! "no context". A context is read from `$DOCKER_CONFIG/contexts/meta/<sha256 of its
//! name>/meta.json` (`Endpoints.docker.Host`); its TLS material, when present, from
//! `contexts/tls/<sha256>/docker/{ca,cert,key}.pem`. `DOCKER_TLS_VERIFY`/`DOCKER_CERT_PATH`
//! apply to the first two sources only, as with the CLI. `ssh://` hosts are refused with a
//! way out (bollard cannot speak ssh).
//!
//! Reads files and the given variables only; connects to nothing (that is [`super::connect`]).

use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::tls::TlsSettings;

/// Where the engine is when neither the config nor `DOCKER_HOST` says.
pub const DEFAULT_HOST: &str = "unix:///var/run/docker.sock";
/// Where it is in that case when `DOCKER_TLS_VERIFY` is set (as with the docker CLI).
pub const DEFAULT_TLS_HOST: &str = "tcp://localhost:2376";

/// Where the engine address came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// `docker.host` in the configuration.
    Config,
    /// The `DOCKER_HOST` variable.
    DockerHost,
    /// A docker CLI context, named by `DOCKER_CONTEXT` or by `currentContext` in a file.
    Context { name: String, named_by: String },
    /// Nothing said otherwise: the local socket.
    Default,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Config => f.write_str("docker.host in the configuration"),
            Source::DockerHost => f.write_str("DOCKER_HOST"),
            Source::Context { name, named_by } => {
                write!(f, "docker context {name:?} from {named_by}")
            }
            Source::Default => f.write_str("the default socket"),
        }
    }
}

/// The engine to connect to, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// `unix://…`, `tcp://…`, `http://…` or `https://…`.
    pub host: String,
    pub tls: TlsSettings,
    pub source: Source,
}

/// Why no endpoint could be resolved. All of these are usage errors: nothing was contacted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ContextError {
    #[error(
        "docker context {name:?} (named by {named_by}) does not exist: no {} (create it with \
         `docker context create`, pick another with `docker context use`, or set DOCKER_HOST)",
        meta.display()
    )]
    NotFound {
        name: String,
        named_by: String,
        meta: PathBuf,
    },
    #[error("cannot read {}: {cause} (fix the file, or set DOCKER_CONFIG to another directory)", path.display())]
    Unreadable { path: PathBuf, cause: String },
    #[error(
        "docker context {name:?} has no docker endpoint in {} (recreate it with \
         `docker context create {name} --docker host=…`)",
        meta.display()
    )]
    NoEndpoint { name: String, meta: PathBuf },
    #[error(
        "docker host {host} (from {from}) uses ssh://, which stagesweep does not support \
         (forward the socket: `ssh -nNT -L /tmp/docker.sock:/var/run/docker.sock HOST`, then \
         use unix:///tmp/docker.sock)"
    )]
    Ssh { host: String, from: Source },
    #[error(
        "docker context {name:?} skips TLS verification, which stagesweep does not support \
         (give the context the daemon's CA: `docker context update {name} --docker \
         host=…,ca=…,cert=…,key=…`)"
    )]
    SkipTlsVerify { name: String },
}

#[derive(Debug, Default, Deserialize)]
struct ConfigFile {
    #[serde(rename = "currentContext", default)]
    current_context: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Meta {
    #[serde(rename = "Endpoints", default)]
    endpoints: Endpoints,
}

#[derive(Debug, Default, Deserialize)]
struct Endpoints {
    docker: Option<DockerEndpoint>,
}

#[derive(Debug, Deserialize)]
struct DockerEndpoint {
    #[serde(rename = "Host", default)]
    host: Option<String>,
    #[serde(rename = "SkipTLSVerify", default)]
    skip_tls_verify: bool,
}

impl Endpoint {
    /// The endpoint for `config_host` (`docker.host`) and this process's environment.
    pub fn from_env(config_host: Option<&str>) -> Result<Self, ContextError> {
        Self::resolve(config_host, &|name| std::env::var_os(name))
    }

    /// The endpoint for `config_host` and the variables `var` returns.
    pub fn resolve(
        config_host: Option<&str>,
        var: &dyn Fn(&str) -> Option<OsString>,
    ) -> Result<Self, ContextError> {
        let set = |name: &str| {
            var(name)
                .filter(|v| !v.is_empty())
                .map(|v| v.to_string_lossy().trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let env_tls = || TlsSettings::from_vars(var);
        let endpoint = if let Some(host) = config_host.map(str::trim).filter(|h| !h.is_empty()) {
            Endpoint::new(host, env_tls(), Source::Config)
        } else if let Some(host) = set("DOCKER_HOST") {
            Endpoint::new(&host, env_tls(), Source::DockerHost)
        } else {
            let dir = config_dir(var);
            match context_name(set("DOCKER_CONTEXT"), dir.as_deref())? {
                Some((name, named_by)) if name != "default" => {
                    let dir = dir.ok_or_else(|| ContextError::Unreadable {
                        path: PathBuf::from("~/.docker"),
                        cause: "neither DOCKER_CONFIG nor HOME is set".into(),
                    })?;
                    from_context(&dir, name, named_by)?
                }
                _ => {
                    let tls = env_tls();
                    let host = if tls.verify {
                        DEFAULT_TLS_HOST
                    } else {
                        DEFAULT_HOST
                    };
                    Endpoint::new(host, tls, Source::Default)
                }
            }
        };
        if endpoint.host.starts_with("ssh://") {
            return Err(ContextError::Ssh {
                host: endpoint.host,
                from: endpoint.source,
            });
        }
        Ok(endpoint)
    }

    fn new(host: &str, tls: TlsSettings, source: Source) -> Self {
        Self {
            host: host.to_owned(),
            tls,
            source,
        }
    }

    /// The context's name, when a context chose the engine.
    #[must_use]
    pub fn context(&self) -> Option<&str> {
        match &self.source {
            Source::Context { name, .. } => Some(name),
            _ => None,
        }
    }
}

/// `$DOCKER_CONFIG`, else `$HOME/.docker`.
fn config_dir(var: &dyn Fn(&str) -> Option<OsString>) -> Option<PathBuf> {
    let set = |name: &str| var(name).filter(|v| !v.is_empty());
    set("DOCKER_CONFIG")
        .map(PathBuf::from)
        .or_else(|| set("HOME").map(|h| Path::new(&h).join(".docker")))
}

/// The context to use and what named it: `DOCKER_CONTEXT`, else `currentContext`.
fn context_name(
    from_env: Option<String>,
    dir: Option<&Path>,
) -> Result<Option<(String, String)>, ContextError> {
    if let Some(name) = from_env {
        return Ok(Some((name, "DOCKER_CONTEXT".to_owned())));
    }
    let Some(path) = dir.map(|d| d.join("config.json")) else {
        return Ok(None);
    };
    let file: ConfigFile = match read_json(&path)? {
        Some(file) => file,
        None => return Ok(None),
    };
    Ok(file
        .current_context
        .filter(|n| !n.is_empty())
        .map(|name| (name, format!("currentContext in {}", path.display()))))
}

fn from_context(dir: &Path, name: String, named_by: String) -> Result<Endpoint, ContextError> {
    let id = hex::encode(Sha256::digest(name.as_bytes()));
    let meta_path = dir.join("contexts/meta").join(&id).join("meta.json");
    let Some(meta) = read_json::<Meta>(&meta_path)? else {
        return Err(ContextError::NotFound {
            name,
            named_by,
            meta: meta_path,
        });
    };
    let Some(docker) = meta.endpoints.docker.filter(|d| d.host.is_some()) else {
        return Err(ContextError::NoEndpoint {
            name,
            meta: meta_path,
        });
    };
    if docker.skip_tls_verify {
        return Err(ContextError::SkipTlsVerify { name });
    }
    let tls_dir = dir.join("contexts/tls").join(&id).join("docker");
    let tls = if tls_dir.join("ca.pem").exists() {
        TlsSettings::verify_with(tls_dir)
    } else {
        TlsSettings::default()
    };
    let host = docker.host.expect("filtered on a present host above");
    Ok(Endpoint::new(
        &host,
        tls,
        Source::Context { name, named_by },
    ))
}

/// A JSON file, or `None` when it does not exist.
fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<Option<T>, ContextError> {
    let unreadable = |cause: String| ContextError::Unreadable {
        path: path.to_owned(),
        cause,
    };
    let text = match std::fs::read(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(unreadable(e.to_string())),
    };
    serde_json::from_slice(&text)
        .map(Some)
        .map_err(|e| unreadable(e.to_string()))
}

#[cfg(test)]
#[path = "context_tests.rs"]
mod tests;
