//! Locating and measuring the disk, with plain values and temporary directories.

use super::*;
use crate::config::Watermarks;

fn disk() -> DiskConfig {
    DiskConfig {
        space: Watermarks { high: 85, low: 80 },
        inodes: None,
        path: None,
        containerd_root: None,
        measure: Measure::Statvfs,
        check_every: None,
        forecast: crate::config::ForecastConfig::default(),
    }
}

fn info(store: ImageStore, remote: Option<&str>) -> EngineInfo {
    EngineInfo {
        root_dir: Some("/var/lib/docker".into()),
        image_store: store,
        remote: remote.map(str::to_owned),
        ..EngineInfo::default()
    }
}

fn overlay2() -> ImageStore {
    ImageStore::Graphdriver("overlay2".into())
}

/// A directory that looks like containerd's root (it holds the content store).
fn containerd_root() -> tempfile::TempDir {
    let root = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir(root.path().join(CONTAINERD_CONTENT)).expect("content store");
    root
}

#[test]
fn statvfs_measures_a_real_filesystem_and_names_a_missing_path() {
    let here = statvfs(Path::new("/")).expect("the root filesystem");
    assert!(here.capacity_bytes > 0 && here.available_bytes <= here.capacity_bytes);
    let e = statvfs(Path::new("/nonexistent/stagesweep")).expect_err("missing");
    assert!(e.to_string().contains("/nonexistent/stagesweep"), "{e}");
    assert!(e.to_string().contains("disk.path"), "{e}");
    let api = Gauge::Api {
        max_images_bytes: 1000,
    };
    let image = crate::engine::fake::image("a").size(900).build();
    let measured = api.measure(&[image]).expect("no filesystem needed");
    assert!((measured.used_ratio() - 0.9).abs() < 1e-9);
}

#[test]
fn a_graph_driver_measures_the_data_root_and_disk_path_wins_everywhere() {
    let g = locate(&disk(), &info(overlay2(), None)).expect("located");
    let want = Gauge::Statvfs {
        path: "/var/lib/docker".into(),
        basis: Basis::DataRoot,
    };
    assert_eq!(g, want);
    let shown = g.describe(&info(overlay2(), None));
    assert_eq!(
        shown,
        "/var/lib/docker (the engine's data root, DockerRootDir: its overlay2 layers live there)"
    );
    let no_root = EngineInfo {
        root_dir: None,
        ..info(overlay2(), None)
    };
    assert_eq!(locate(&disk(), &no_root), Err(DiskError::NoDataRoot));
    // disk.path is measured as given, on any store and for a remote engine too.
    let with_path = DiskConfig {
        path: Some("/mnt/docker".into()),
        ..disk()
    };
    for i in [
        info(overlay2(), None),
        info(ImageStore::Containerd, None),
        info(overlay2(), Some("tcp://build-host:2375")),
    ] {
        let g = locate(&with_path, &i).expect("disk.path");
        assert_eq!(g.path(), Some(Path::new("/mnt/docker")));
        assert!(
            g.describe(&i).ends_with("(disk.path)"),
            "{}",
            g.describe(&i)
        );
    }
}

#[test]
fn a_remote_engine_without_disk_path_is_refused_naming_the_key() {
    for store in [overlay2(), ImageStore::Containerd] {
        let e = locate(&disk(), &info(store, Some("tcp://10.0.0.7:2375"))).expect_err("remote");
        assert_eq!(e.key(), "disk.path");
        let text = e.to_string();
        assert!(text.contains("tcp://10.0.0.7:2375 is remote"), "{text}");
        assert!(text.contains("set disk.path"), "{text}");
        assert!(text.contains("measure: api"), "{text}");
    }
    // measure: api needs no filesystem: remote is fine.
    let api = DiskConfig {
        measure: Measure::Api {
            max_images_bytes: 10,
        },
        ..disk()
    };
    let remote = info(overlay2(), Some("tcp://10.0.0.7:2375"));
    assert_eq!(
        locate(&api, &remote),
        Ok(Gauge::Api {
            max_images_bytes: 10
        })
    );
}

#[test]
fn the_containerd_store_measures_containerds_root_once_its_content_store_is_there() {
    let root = containerd_root();
    let set = DiskConfig {
        containerd_root: Some(root.path().to_owned()),
        ..disk()
    };
    let containerd = info(ImageStore::Containerd, None);
    let g = locate(&set, &containerd).expect("located");
    assert_eq!(
        g,
        Gauge::Statvfs {
            path: root.path().to_owned(),
            basis: Basis::ContainerdRoot(true),
        }
    );
    assert!(
        g.describe(&containerd).ends_with(
            "(containerd's root, disk.containerd_root: the engine uses the containerd image store)"
        ),
        "{}",
        g.describe(&containerd)
    );
    // An empty directory is not containerd's root, nor is a missing one.
    let empty = tempfile::tempdir().expect("temp dir");
    let missing = empty.path().join("nope");
    for (path, cause) in [
        (
            empty.path().to_owned(),
            "holds no io.containerd.content.v1.content",
        ),
        (missing, "does not exist here"),
    ] {
        let cfg = DiskConfig {
            containerd_root: Some(path.clone()),
            ..disk()
        };
        let e = locate(&cfg, &containerd).expect_err("refused");
        assert_eq!(e.key(), "disk.containerd_root");
        let text = e.to_string();
        assert!(
            text.contains(&format!(
                "{} (disk.containerd_root) {cause}",
                path.display()
            )),
            "{text}"
        );
        assert!(text.contains("containerd image store"), "{text}");
    }
}

#[test]
fn the_default_containerd_root_is_named_as_the_default() {
    let containerd = info(ImageStore::Containerd, None);
    let elsewhere = tempfile::tempdir().expect("temp dir");
    let e = locate_with(&disk(), &containerd, elsewhere.path()).expect_err("empty");
    let text = e.to_string();
    let shown = format!(
        "{} (the default of disk.containerd_root)",
        elsewhere.path().display()
    );
    assert!(text.contains(&shown), "{text}");
    let root = containerd_root();
    let g = locate_with(&disk(), &containerd, root.path()).expect("located");
    assert_eq!(
        g,
        Gauge::Statvfs {
            path: root.path().to_owned(),
            basis: Basis::ContainerdRoot(false),
        }
    );
    assert!(
        g.describe(&containerd)
            .contains("the default of disk.containerd_root")
    );
}
