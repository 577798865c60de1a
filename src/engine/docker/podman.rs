//! What is particular to Podman's Docker-compatible API (checked on Podman 4.3): recognising
//! it, and the answers it gives where Docker gives others. The rest of what differs is
//! absorbed elsewhere: bare-hex IDs ([`crate::inventory::ImageId`] parses both forms),
//! `RepoTags: null` (bollard reads it as empty), fully qualified names
//! ([`crate::reference`]).

use bollard::models::SystemVersion;

use crate::engine::{EngineInfo, EngineKind};

/// Which engine answered `/version`: Podman names itself in `Components` (`Podman Engine`,
/// the same version as its `Libpod-Api-Version` ping header); Docker's components are
/// `Engine`, `containerd`, `runc`, `docker-init`.
pub(super) fn kind_of(version: &SystemVersion) -> EngineKind {
    let podman = version.components.iter().flatten().any(|c| {
        c.name
            .get(..6)
            .is_some_and(|head| head.eq_ignore_ascii_case("podman"))
    });
    if podman {
        EngineKind::Podman
    } else {
        EngineKind::Docker
    }
}

/// Podman 4 ignores `noprune`: deleting an image also deletes its untagged parents left
/// without children (checked on 4.3; Podman 5.8 honours it). The engine says so
/// (`Engine::deletes_parents`) and the executor checks those parents before it asks
/// (`execute::parents`). A version that does not read as `MAJOR.…` is taken for Podman 4.
pub(super) fn deletes_parents(version: &str) -> bool {
    let major = version
        .split('.')
        .next()
        .and_then(|m| m.parse::<u32>().ok());
    major.is_none_or(|m| m < 5)
}

/// An identity for a Podman service that stays the same from call to call: Podman's `/info`
/// answers a new random `ID` on every call (4.3 and 5.8; `uuid.New()` in its source), and
/// plan files and the history are bound to the engine's identity. Its host name and its
/// storage root (`DockerRootDir`, the graph root) tell one Podman store from another.
pub(super) fn stable_id(info: &EngineInfo) -> String {
    let root = info.root_dir.as_deref().unwrap_or(std::path::Path::new(""));
    format!("podman:{}:{}", info.name, root.display())
}

/// Podman answers a delete by ID of an image with several tags with 500 `unable to delete
/// image "…" by ID with more than one tag (…): please force removal`, where Docker answers
/// 409 (`image is referenced in multiple repositories`): the daemon refusing, not a failure.
pub(super) fn is_refusal(status: u16, message: &str) -> bool {
    status == 500 && message.contains("more than one tag")
}

#[cfg(test)]
mod tests {
    use bollard::models::SystemVersionComponents;

    use super::*;

    fn with_components(names: &[&str]) -> SystemVersion {
        SystemVersion {
            components: Some(
                names
                    .iter()
                    .map(|n| SystemVersionComponents {
                        name: (*n).to_owned(),
                        version: "1".to_owned(),
                        details: None,
                    })
                    .collect(),
            ),
            ..SystemVersion::default()
        }
    }

    #[test]
    fn podman_is_recognised_by_its_component() {
        let podman = with_components(&["Podman Engine", "Conmon", "OCI Runtime (runc)"]);
        assert_eq!(kind_of(&podman), EngineKind::Podman);
        let docker = with_components(&["Engine", "containerd", "runc", "docker-init"]);
        assert_eq!(kind_of(&docker), EngineKind::Docker);
        assert_eq!(kind_of(&SystemVersion::default()), EngineKind::Docker);
    }

    #[test]
    fn podman_4_deletes_parents_along_and_podman_5_does_not() {
        assert!(deletes_parents("4.3.1"));
        assert!(!deletes_parents("5.8.6"));
        assert!(!deletes_parents("6.0.0-dev"));
        assert!(deletes_parents(""), "unknown: the careful answer");
    }

    #[test]
    fn a_podman_identity_is_its_host_and_storage_root() {
        let info = |id: &str, root: &str| EngineInfo {
            kind: EngineKind::Podman,
            id: id.to_owned(),
            name: "vm".to_owned(),
            root_dir: Some(root.into()),
            ..EngineInfo::default()
        };
        let a = stable_id(&info("56a09ce3", "/var/lib/containers/storage"));
        assert_eq!(a, "podman:vm:/var/lib/containers/storage");
        assert_eq!(
            a,
            stable_id(&info("541cf79a", "/var/lib/containers/storage"))
        );
        assert_ne!(a, stable_id(&info("56a09ce3", "/tmp/p5/root")));
    }

    #[test]
    fn only_the_multi_tag_answer_is_a_refusal() {
        let msg = "unable to delete image \"1f15\" by ID with more than one tag ([a:1 b:1]): please force removal";
        assert!(is_refusal(500, msg));
        assert!(!is_refusal(500, "io error"));
        assert!(!is_refusal(409, msg), "409 is a conflict anyway");
    }
}
