//! bollard's models → plain values: image IDs (a malformed one stops the pass), tags and
//! digests without the placeholders, times, the engine's identity, containers and what a
//! DELETE answered.

use bollard::models::{ContainerSummary, ImageDeleteResponseItem, ImageInspect, SystemInfo};
use chrono::{DateTime, Utc};

use crate::engine::{EngineError, EngineInfo, EngineKind, ImageState, ImageStore, RemoveReport};
use crate::inventory::{Container, ImageId, is_placeholder_reference};

/// An ID the engine gave that does not parse: the listing is not trusted, the pass stops.
fn malformed(what: &str, id: &str) -> EngineError {
    EngineError::Other(format!(
        "docker listed {what} with a malformed image ID {id:?} (expected sha256:<64 hex digits>); \
         nothing was deleted — is this a Docker-compatible engine?"
    ))
}

pub(super) fn image_id(what: &str, id: &str) -> Result<ImageId, EngineError> {
    id.parse().map_err(|_| malformed(what, id))
}

/// `RepoTags` and `RepoDigests` as tags and digest references, without the engine's
/// placeholders for "none". Podman also lists the `repo@sha256:…` of an image pulled by
/// digest among its `RepoTags`: that is a digest, not a tag.
pub(super) fn tags_and_digests(
    tags: Vec<String>,
    digests: Vec<String>,
) -> (Vec<String>, Vec<String>) {
    let real = |r: &String| !is_placeholder_reference(r);
    let mut digests: Vec<String> = digests.into_iter().filter(real).collect();
    let mut references = Vec::with_capacity(tags.len());
    for t in tags.into_iter().filter(real) {
        if !t.contains('@') {
            references.push(t);
        } else if !digests.contains(&t) {
            digests.push(t);
        }
    }
    // Sized to fit, and no allocation at all when empty: an untagged image comes listed
    // with `<none>:<none>` and `<none>@<none>`, whose vectors would otherwise stay allocated
    // (≈ 150 bytes an image, most of a builder host's images).
    references.shrink_to_fit();
    digests.shrink_to_fit();
    (references, digests)
}

/// An RFC 3339 time from the engine; `None` when missing or unparsable.
pub(super) fn engine_time(text: Option<&str>) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text?.trim())
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// The image store `/info` describes: the containerd image store names its snapshotter in
/// `DriverStatus` (`["driver-type", "io.containerd.snapshotter.v1"]`), a graph driver does
/// not; `None` without a `DriverStatus`.
pub(super) fn image_store(info: &SystemInfo) -> Option<ImageStore> {
    let status = info.driver_status.as_ref()?;
    let containerd = (status.iter()).any(|pair| {
        pair.iter()
            .any(|v| v.starts_with("io.containerd.snapshotter"))
    });
    Some(if containerd {
        ImageStore::Containerd
    } else {
        ImageStore::GraphDriver
    })
}

pub(super) fn to_engine_info(info: SystemInfo) -> EngineInfo {
    EngineInfo {
        image_store: image_store(&info),
        kind: EngineKind::Docker,
        id: info.id.unwrap_or_default(),
        name: info.name.unwrap_or_default(),
        server_version: info.server_version.unwrap_or_default(),
        system_time: engine_time(info.system_time.as_deref()),
        root_dir: info
            .docker_root_dir
            .filter(|d| !d.is_empty())
            .map(Into::into),
    }
}

pub(super) fn to_image_state(name: &str, inspect: ImageInspect) -> Result<ImageState, EngineError> {
    let id = image_id(
        &format!("image {name} on inspect"),
        inspect.id.as_deref().unwrap_or_default(),
    )?;
    // The zero time (`0001-01-01T00:00:00Z`) means "never tagged".
    let last_tagged = engine_time(inspect.metadata.and_then(|m| m.last_tag_time).as_deref())
        .filter(|t| t.timestamp() > 0);
    let (references, digests) = tags_and_digests(
        inspect.repo_tags.unwrap_or_default(),
        inspect.repo_digests.unwrap_or_default(),
    );
    Ok(ImageState {
        id,
        references,
        digests,
        created: engine_time(inspect.created.as_deref()),
        last_tagged,
    })
}

/// `None` for a container without an image: the classic builder creates one (`Image` and
/// `ImageID` empty) for the first step after `FROM scratch`. It uses no image, so it keeps
/// none; failing the listing on it would fail every pass that meets such a build.
pub(super) fn to_container(s: ContainerSummary) -> Result<Option<Container>, EngineError> {
    let id = s.id.unwrap_or_default();
    let raw_image_id = s.image_id.as_deref().unwrap_or_default();
    if raw_image_id.is_empty() && s.image.as_deref().unwrap_or_default().is_empty() {
        return Ok(None);
    }
    let what = format!("container {}", crate::inventory::short_id(&id));
    let image_id = image_id(&what, raw_image_id)?;
    Ok(Some(Container {
        id,
        image_id,
        image: s.image.unwrap_or_default(),
        state: s.state.map(|st| st.to_string()).unwrap_or_default(),
    }))
}

/// The daemon's delete answer; deleted image IDs in the `sha256:` form (Podman gives bare
/// hex), other entries (layers) as they came.
pub(super) fn to_remove_report(items: Vec<ImageDeleteResponseItem>) -> RemoveReport {
    let mut report = RemoveReport::default();
    for item in items {
        report.untagged.extend(item.untagged);
        report
            .deleted
            .extend(item.deleted.map(|d| match d.parse::<ImageId>() {
                Ok(id) => id.to_string(),
                Err(_) => d,
            }));
    }
    report
}

#[cfg(test)]
mod tests {
    use bollard::models::ContainerSummaryStateEnum;

    use super::*;

    const A: &str = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

    #[test]
    fn a_digest_among_the_tags_is_a_digest() {
        // Podman lists an image pulled by digest with `repo@sha256:…` in RepoTags too.
        let d = "127.0.0.1:5000/app@sha256:ff".to_owned();
        let (tags, digests) = tags_and_digests(
            vec![d.clone(), "app:1".into(), "other@sha256:ee".into()],
            vec![d.clone()],
        );
        assert_eq!(tags, vec!["app:1".to_owned()]);
        assert_eq!(digests, vec![d, "other@sha256:ee".to_owned()]);
    }

    #[test]
    fn an_untagged_image_holds_no_reference_vectors() {
        let (tags, digests) =
            tags_and_digests(vec!["<none>:<none>".into()], vec!["<none>@<none>".into()]);
        assert!(tags.is_empty() && digests.is_empty());
        assert_eq!(
            (tags.capacity(), digests.capacity()),
            (0, 0),
            "nothing allocated"
        );
        // As a listing grows its vectors: room for more than the one digest it holds.
        let mut listed = Vec::with_capacity(4);
        listed.extend(["app@sha256:ff".to_owned()]);
        let (_, digests) = tags_and_digests(Vec::new(), listed);
        assert_eq!(digests.capacity(), 1);
    }

    #[test]
    fn image_inspect_maps_tags_times_and_the_zero_tag_time() {
        use bollard::models::ImageInspectMetadata;
        let inspect = |last: &str| ImageInspect {
            id: Some(A.into()),
            repo_tags: Some(vec!["app:1".into()]),
            repo_digests: Some(vec!["<none>@<none>".into(), "app@sha256:ff".into()]),
            created: Some("2024-05-06T07:08:09.123456789Z".into()),
            metadata: Some(ImageInspectMetadata {
                last_tag_time: Some(last.into()),
            }),
            ..ImageInspect::default()
        };
        let state = to_image_state("app:1", inspect("2025-01-02T03:04:05Z")).unwrap();
        assert_eq!(state.id.to_string(), A);
        assert_eq!(state.references, vec!["app:1".to_owned()]);
        assert_eq!(state.digests, vec!["app@sha256:ff".to_owned()]);
        assert_eq!(state.created.map(|t| t.timestamp()), Some(1_714_979_289));
        assert_eq!(
            state.last_tagged.map(|t| t.timestamp()),
            Some(1_735_787_045)
        );
        let never = to_image_state("app:1", inspect("0001-01-01T00:00:00Z")).unwrap();
        assert_eq!(never.last_tagged, None);
        let garbage = to_image_state("app:1", inspect("yesterday")).unwrap();
        assert_eq!(garbage.last_tagged, None);
        let no_id = to_image_state("x", ImageInspect::default()).unwrap_err();
        assert!(no_id.to_string().contains("image x on inspect"), "{no_id}");
    }

    #[test]
    fn system_info_maps_identity_clock_and_root() {
        let info = to_engine_info(SystemInfo {
            id: Some("ABCD:EFGH".into()),
            name: Some("host1".into()),
            server_version: Some("20.10.24".into()),
            system_time: Some("2026-11-29T13:49:26.123456789+01:00".into()),
            docker_root_dir: Some("/var/lib/docker".into()),
            ..SystemInfo::default()
        });
        assert_eq!(info.id, "ABCD:EFGH");
        assert_eq!(info.server_version, "20.10.24");
        assert_eq!(info.system_time.map(|t| t.timestamp()), Some(1_795_956_566));
        assert_eq!(info.root_dir, Some("/var/lib/docker".into()));
        let empty = to_engine_info(SystemInfo::default());
        assert_eq!(empty, EngineInfo::default());
    }

    #[test]
    fn container_summary_uses_image_id() {
        let c = to_container(ContainerSummary {
            id: Some("c1".into()),
            image: Some("app:1".into()),
            image_id: Some(A.into()),
            state: Some(ContainerSummaryStateEnum::CREATED),
            ..ContainerSummary::default()
        });
        assert_eq!(
            c.unwrap(),
            Some(Container {
                id: "c1".into(),
                image_id: A.parse().unwrap(),
                image: "app:1".into(),
                state: "created".into()
            })
        );
    }

    #[test]
    fn a_classic_build_step_on_scratch_has_no_image_and_is_left_out() {
        // As listed while `FROM scratch` + `COPY` builds with DOCKER_BUILDKIT=0.
        let step = to_container(ContainerSummary {
            id: Some("3bb65ff1ace2".into()),
            image: Some(String::new()),
            image_id: Some(String::new()),
            state: Some(ContainerSummaryStateEnum::CREATED),
            ..ContainerSummary::default()
        });
        assert_eq!(step.unwrap(), None);
    }

    #[test]
    fn malformed_container_image_ids_fail_the_listing() {
        let e = to_container(ContainerSummary {
            id: Some("c1".into()),
            image: Some("app:1".into()),
            ..ContainerSummary::default()
        })
        .unwrap_err();
        assert!(e.to_string().contains("container c1"), "{e}");
    }

    #[test]
    fn remove_response_maps_items() {
        let report = to_remove_report(vec![
            ImageDeleteResponseItem {
                untagged: Some("app:1".into()),
                deleted: None,
            },
            ImageDeleteResponseItem {
                untagged: None,
                deleted: Some("sha256:aa".into()),
            },
            ImageDeleteResponseItem {
                untagged: None,
                deleted: Some("sha256:bb".into()),
            },
        ]);
        assert_eq!(report.untagged, vec!["app:1".to_owned()]);
        let podman = to_remove_report(vec![ImageDeleteResponseItem {
            untagged: None,
            deleted: Some(A.trim_start_matches("sha256:").to_owned()),
        }]);
        assert_eq!(
            podman.deleted,
            vec![A.to_owned()],
            "bare hex in the sha256: form"
        );
        assert_eq!(
            report.deleted,
            vec!["sha256:aa".to_owned(), "sha256:bb".to_owned()]
        );
    }
}
