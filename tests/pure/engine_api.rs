//! The real `DockerEngine` against recorded answers of each supported Engine API shape: 1.41
//! (Docker 20.10, recorded here), 1.44 (Docker 25), 1.47 (Docker 27), 1.52 (Docker 29 with
//! the containerd image store: real `Containers` counts, `SharedSize`, `Descriptor`,
//! `Manifests`, no parents) and Podman 4.3 (recorded here), served by a fake engine on a unix
//! socket (`support::fake_api`). Every call stagesweep makes: ping, version negotiation,
//! info, list images, inspect an image, list containers, delete; and a whole pass. An
//! unknown field or a missing optional field never breaks a pass; a missing field that
//! safety depends on stops the pass before anything is deleted.

use crate::support;

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;
use stagesweep::config::DockerConfig;
use stagesweep::engine::docker::{DockerEngine, connect};
use stagesweep::engine::{Engine, EngineError, EngineKind, ImageStore};
use stagesweep::inventory::ImageId;
use stagesweep::pass::{PassOptions, run_pass};
use stagesweep::plan::{Action, Reason};
use support::fake_api::{FakeApi, Recorded, only_fields, with_unknown_fields};
use support::passes::config;
use tokio_util::sync::CancellationToken;

const SHAPES: [&str; 5] = ["1.41", "1.44", "1.47", "1.52", "podman-4.3"];

/// One policy deleting every image, whatever its age.
const ALL_IMAGES: &str =
    "policies:\n  - name: all\n    match: { all_images: true }\n    min_age: 0s\n";

async fn engine(api: &FakeApi) -> DockerEngine {
    let cfg = DockerConfig {
        host: Some(api.host.clone()),
        timeout: Duration::from_secs(5),
        ..DockerConfig::default()
    };
    connect(&cfg)
        .await
        .unwrap_or_else(|e| panic!("connect to the fake engine: {e}"))
}

fn id(v: &Value) -> ImageId {
    let text = v.as_str().expect("an ID string");
    text.parse()
        .unwrap_or_else(|e| panic!("recorded ID {text}: {e}"))
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn tags(image: &Value) -> Vec<String> {
    let mut t = strings(&image["RepoTags"]);
    t.retain(|t| !t.starts_with("<none>"));
    t
}

/// ping, negotiation, info, images, containers, inspect: what the engine maps matches the
/// recorded answer field by field.
async fn reads_match(shape: &str, rec: &Recorded, engine: &DockerEngine) {
    engine.ping().await.expect("ping");
    let api = rec.api_version();
    assert!(
        engine.describe().contains(&format!("api {api}")),
        "{shape}: negotiated to the engine's {api}: {}",
        engine.describe()
    );
    let info = engine.info().await.expect("info");
    let text = |field: &str| rec.info[field].as_str().unwrap_or_default().to_owned();
    // Podman's `ID` is new on every call: its identity is its host and storage root.
    let identity = if rec.libpod_version().is_some() {
        format!("podman:{}:{}", text("Name"), text("DockerRootDir"))
    } else {
        text("ID")
    };
    assert_eq!(info.id, identity, "{shape}");
    // `None`: no `DriverStatus`, the store is unknown (every check is made).
    let store_is_containerd = rec.info["DriverStatus"].as_array().map(|status| {
        status
            .iter()
            .any(|pair| pair[1] == "io.containerd.snapshotter.v1")
    });
    assert_eq!(
        info.image_store == ImageStore::Containerd,
        store_is_containerd == Some(true),
        "{shape}: {:?}",
        info.image_store
    );
    assert_eq!(
        info.server_version,
        rec.info["ServerVersion"].as_str().unwrap_or_default()
    );
    assert!(info.system_time.is_some(), "{shape}: {info:?}");
    let kind = if rec.libpod_version().is_some() {
        EngineKind::Podman
    } else {
        EngineKind::Docker
    };
    assert_eq!(info.kind, kind, "{shape}");
    // What the engine does to parents, from its kind, version and image store.
    let graph_driver_docker = kind == EngineKind::Docker && store_is_containerd == Some(false);
    assert_eq!(
        engine.refuses_parents_with_children(),
        graph_driver_docker,
        "{shape}"
    );
    assert_eq!(
        engine.deletes_parents(),
        kind == EngineKind::Podman,
        "{shape}: Podman 4.3"
    );

    let images = engine.list_images().await.expect("list images");
    let recorded = rec.images.as_array().expect("an array of images");
    assert_eq!(images.len(), recorded.len(), "{shape}");
    for r in recorded {
        let i = images
            .iter()
            .find(|i| i.id == id(&r["Id"]))
            .expect("listed");
        assert_eq!(i.references, tags(r), "{shape}");
        let parent = r["ParentId"].as_str().filter(|p| !p.is_empty());
        assert_eq!(i.parent_id, parent.map(|p| id(&Value::from(p))), "{shape}");
        assert_eq!(i.created.timestamp(), r["Created"].as_i64().unwrap_or(-1));
        assert_eq!(Some(i.size), r["Size"].as_u64(), "{shape}");
        let labels: BTreeMap<String, String> =
            serde_json::from_value(r["Labels"].clone()).unwrap_or_default();
        assert_eq!(i.labels, labels.into_iter().collect(), "{shape}");
    }

    let containers = engine.list_containers().await.expect("list containers");
    let recorded = rec.containers.as_array().expect("an array of containers");
    assert_eq!(containers.len(), recorded.len(), "{shape}");
    for (c, r) in containers.iter().zip(recorded) {
        assert_eq!(c.image_id, id(&r["ImageID"]), "{shape}");
        assert_eq!(c.state, r["State"].as_str().unwrap_or_default(), "{shape}");
    }

    let name = tags(&rec.image)[0].clone();
    let state = engine.inspect_image(&name).await.expect("inspect");
    assert_eq!(state.id, id(&rec.image["Id"]), "{shape}");
    assert_eq!(state.references, tags(&rec.image), "{shape}");
    let created = rec.image["Created"].as_str().expect("RFC 3339 Created");
    let created: DateTime<Utc> = created.parse().expect("the recorded time parses");
    assert_eq!(state.created, Some(created), "{shape}");
    let missing = engine.inspect_image("never-recorded:1").await;
    assert!(
        matches!(missing, Err(EngineError::NotFound(_))),
        "{missing:?}"
    );
}

/// Each recorded DELETE answer, in order: 200 lists what went, 409 is a conflict, 404 not
/// found, and image IDs come back in the `sha256:` form whatever the engine sent.
async fn deletes_match(shape: &str, rec: &Recorded, engine: &DockerEngine) {
    for (name, answers) in rec.delete.as_object().expect("delete answers by name") {
        for answer in answers.as_array().expect("a sequence") {
            let got = engine.remove_image(name).await;
            match answer["status"].as_u64() {
                Some(200) => {
                    let report = got.unwrap_or_else(|e| panic!("{shape} {name}: {e}"));
                    let body = answer["body"].as_array().expect("items");
                    let untagged: Vec<&str> =
                        body.iter().filter_map(|i| i["Untagged"].as_str()).collect();
                    assert_eq!(report.untagged, untagged, "{shape} {name}");
                    let deleted: Vec<ImageId> = body
                        .iter()
                        .filter(|i| i["Deleted"].is_string())
                        .map(|i| id(&i["Deleted"]))
                        .collect();
                    let reported: Vec<ImageId> = report
                        .deleted
                        .iter()
                        .map(|d| d.parse().expect("an image ID"))
                        .collect();
                    assert_eq!(reported, deleted, "{shape} {name}");
                    assert!(
                        report.deleted.iter().all(|d| d.starts_with("sha256:")),
                        "{shape}: {report:?}"
                    );
                }
                Some(409) => assert!(matches!(got, Err(EngineError::Conflict(_))), "{got:?}"),
                Some(404) => assert!(matches!(got, Err(EngineError::NotFound(_))), "{got:?}"),
                other => panic!("{shape}: unexpected recorded status {other:?}"),
            }
        }
    }
}

/// A whole pass (dry run) over the recorded inventory: every image decided, the image a
/// container uses kept as in use.
async fn pass_works(shape: &str, rec: &Recorded, engine: &DockerEngine) {
    let opts = PassOptions {
        dry_run: true,
        ..PassOptions::default()
    };
    let report = run_pass(
        engine,
        &config(ALL_IMAGES),
        Utc::now(),
        &opts,
        &CancellationToken::new(),
    )
    .await
    .unwrap_or_else(|e| panic!("{shape}: the pass failed: {e}"));
    let images = rec.images.as_array().expect("images");
    assert_eq!(report.plan.decisions.len(), images.len(), "{shape}");
    let used = id(&rec.containers[0]["ImageID"]);
    let d = report.decision_for(used).expect("decided");
    assert_eq!(d.action, Action::Keep, "{shape}");
    assert!(matches!(d.reason, Reason::InUse { .. }), "{shape}: {d:?}");
}

async fn every_call(shape: &str, rec: Recorded) {
    let api = FakeApi::start(rec.clone());
    let engine = engine(&api).await;
    reads_match(shape, &rec, &engine).await;
    pass_works(shape, &rec, &engine).await;
    deletes_match(shape, &rec, &engine).await;
}

#[tokio::test]
async fn every_call_reads_each_recorded_api_shape() {
    for shape in SHAPES {
        every_call(shape, Recorded::load(shape)).await;
    }
}

#[tokio::test]
async fn unknown_fields_everywhere_change_nothing() {
    for shape in SHAPES {
        let mut rec = Recorded::load(shape);
        for v in [
            &mut rec.version,
            &mut rec.info,
            &mut rec.images,
            &mut rec.containers,
            &mut rec.image,
        ] {
            with_unknown_fields(v);
        }
        every_call(shape, rec).await;
    }
}

#[tokio::test]
async fn optional_fields_may_be_missing() {
    for shape in SHAPES {
        let mut rec = Recorded::load(shape);
        // What the Engine API marks required in an image summary; everything else goes.
        let required = [
            "Id",
            "ParentId",
            "RepoTags",
            "RepoDigests",
            "Created",
            "Size",
            "SharedSize",
            "Labels",
            "Containers",
        ];
        only_fields(&mut rec.images, &required);
        // Container summaries: every field is optional in the spec; the in-use check needs
        // the image ID (see the next test for what happens without it).
        only_fields(&mut rec.containers, &["Id", "ImageID", "State"]);
        only_fields(&mut rec.image, &["Id", "RepoTags", "Created"]);
        only_fields(&mut rec.info, &["ID", "ServerVersion", "SystemTime"]);
        only_fields(&mut rec.version, &["ApiVersion", "Version", "Components"]);
        every_call(shape, rec).await;
    }
}

#[tokio::test]
async fn a_container_without_its_image_id_stops_the_pass_before_any_deletion() {
    for shape in SHAPES {
        let mut rec = Recorded::load(shape);
        // `Image` kept: a container with neither `Image` nor `ImageID` is a classic build
        // step on `FROM scratch`, which uses no image and is left out (tests/engine_builds.rs).
        only_fields(&mut rec.containers, &["Id", "State", "Image"]);
        let api = FakeApi::start(rec.clone());
        let engine = engine(&api).await;
        let got = run_pass(
            &engine,
            &config(ALL_IMAGES),
            Utc::now(),
            &PassOptions::default(),
            &CancellationToken::new(),
        )
        .await;
        let err = got.expect_err("no in-use check, no pass").to_string();
        assert!(err.contains("malformed image ID"), "{shape}: {err}");
        assert!(err.contains("nothing was deleted"), "{shape}: {err}");
        let deletes: Vec<String> = api
            .requests()
            .into_iter()
            .filter(|r| r.starts_with("DELETE"))
            .collect();
        assert!(deletes.is_empty(), "{shape}: {deletes:?}");
    }
}

#[tokio::test]
async fn podman_multi_tag_delete_by_id_is_a_conflict_not_a_failure() {
    let mut rec = Recorded::load("podman-4.3");
    let image = rec.images[3]["Id"].as_str().expect("id").to_owned();
    let message = format!(
        "unable to delete image \"{}\" by ID with more than one tag ([localhost/app:1 registry.example.com/team/app:1]): please force removal",
        image.trim_start_matches("sha256:")
    );
    rec.delete[&image] = serde_json::json!([{
        "status": 500,
        "body": { "cause": message, "message": message, "response": 500 }
    }]);
    let api = FakeApi::start(rec);
    let engine = engine(&api).await;
    match engine.remove_image(&image).await {
        Err(EngineError::Conflict(m)) => assert!(m.contains("more than one tag"), "{m}"),
        other => panic!("expected a conflict, got {other:?}"),
    }
}

/// Docker 29 refuses API versions below its `MinAPIVersion` (1.44), as the fake engine
/// does: a whole pass on every recorded engine names only versions the engine accepts,
/// each at least its `MinAPIVersion` (negotiated from `/version`, never pinned lower).
#[tokio::test]
async fn no_request_names_an_api_version_below_the_engines_minimum() {
    for shape in SHAPES {
        let rec = Recorded::load(shape);
        let min = rec.version["MinAPIVersion"]
            .as_str()
            .expect("a recorded MinAPIVersion")
            .to_owned();
        let api = FakeApi::start(rec);
        let engine = engine(&api).await;
        let report = run_pass(
            &engine,
            &config(ALL_IMAGES),
            Utc::now(),
            &PassOptions::default(),
            &CancellationToken::new(),
        )
        .await
        .unwrap_or_else(|e| panic!("{shape}: {e}"));
        assert!(
            !report.plan.decisions.is_empty(),
            "{shape}: the pass planned"
        );
        let parse = |v: &str| {
            let (a, b) = v.split_once('.').expect("major.minor");
            (
                a.parse::<u32>().expect("major"),
                b.parse::<u32>().expect("minor"),
            )
        };
        let versions = api.versions();
        assert!(
            !versions.is_empty(),
            "{shape}: versioned requests were made"
        );
        for v in versions {
            assert!(parse(&v) >= parse(&min), "{shape}: /v{v}/ is below {min}");
        }
    }
    // And the fake refuses as Docker 29 does, so a pinned old version cannot pass unseen.
    let api = FakeApi::start(Recorded::load("1.52"));
    let host = api.host.trim_start_matches("unix://").to_owned();
    let mut conn = tokio::net::UnixStream::connect(&host)
        .await
        .expect("connect to the fake engine");
    tokio::io::AsyncWriteExt::write_all(
        &mut conn,
        b"GET /v1.41/images/json HTTP/1.1\r\nHost: d\r\nConnection: close\r\n\r\n",
    )
    .await
    .expect("send");
    let mut answer = Vec::new();
    tokio::io::AsyncReadExt::read_to_end(&mut conn, &mut answer)
        .await
        .expect("read");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(
        answer.contains("Minimum supported API version is 1.44"),
        "{answer}"
    );
}
