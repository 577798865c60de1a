//! Test images built for real: a busybox base image and classic-builder builds through the
//! Engine API, BuildKit builds through the engine's docker CLI (Debian's 20.10 with
//! `DOCKER_BUILDKIT=1`, or 28.5's buildx).

use bollard::Docker;
use bollard::query_parameters::{BuildImageOptionsBuilder, BuilderVersion};
use futures_util::TryStreamExt;

use super::{Scope, TEST_LABEL};

/// A static busybox from `PATH` (Debian's `busybox-static`), to give `FROM scratch` images a shell.
pub fn busybox() -> Vec<u8> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path).chain([std::path::PathBuf::from("/bin")]) {
        if let Ok(bytes) = std::fs::read(dir.join("busybox")) {
            return bytes;
        }
    }
    panic!("busybox not found in PATH: install busybox-static (.ci/run does)");
}

/// A classic-builder (`DOCKER_BUILDKIT=0` equivalent) build of `files` (path, bytes, mode)
/// with `--network none`, tagged `tag`; returns the final image ID.
pub async fn build_classic(docker: &Docker, files: &[(&str, &[u8], u32)], tag: &str) -> String {
    let mut context = tar::Builder::new(Vec::new());
    for (path, data, mode) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(*mode);
        header.set_cksum();
        context
            .append_data(&mut header, path, *data)
            .expect("in-memory tar");
    }
    let context = context.into_inner().expect("in-memory tar");
    let opts = BuildImageOptionsBuilder::new()
        .dockerfile("Dockerfile")
        .t(tag)
        .rm(true)
        .networkmode("none")
        .version(BuilderVersion::BuilderV1)
        .build();
    let infos: Vec<_> = docker
        .build_image(opts, None, Some(bollard::body_full(context.into())))
        .try_collect()
        .await
        .unwrap_or_else(|e| panic!("classic build of {tag} failed: {e}"));
    let log: String = infos.iter().filter_map(|i| i.stream.clone()).collect();
    // The classic builder reports an ID per stage; the last one is the image it tagged.
    infos
        .iter()
        .rev()
        .find_map(|i| i.aux.as_ref().and_then(|a| a.id.clone()))
        .unwrap_or_else(|| panic!("build of {tag} reported no image ID; log:\n{log}"))
}

/// Build the scope's busybox base image (`FROM scratch`, labelled, tagged uniquely).
pub async fn base_image(scope: &Scope) -> (String, String) {
    let tag = scope.tag("base");
    let dockerfile = format!(
        "FROM scratch\nLABEL {TEST_LABEL}={}\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\n",
        scope.id
    );
    let bb = busybox();
    let id = build_classic(
        &scope.docker,
        &[
            ("Dockerfile", dockerfile.as_bytes(), 0o644),
            ("busybox", &bb, 0o755),
        ],
        &tag,
    )
    .await;
    (id, tag)
}

/// A build context in a temp dir: `files` (path, bytes, mode) plus the static busybox.
pub fn buildkit_context(files: &[(&str, &[u8], u32)]) -> tempfile::TempDir {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("temp dir");
    let bb = busybox();
    for (path, data, mode) in files.iter().chain([&("busybox", bb.as_slice(), 0o755)]) {
        let file = dir.path().join(path);
        std::fs::write(&file, data).expect("write the build context");
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(*mode)).expect("chmod");
    }
    dir
}

/// `docker build --network none -t TAG DIR` with BuildKit against `$DOCKER_HOST`, through
/// the engine's own CLI ([`super::matrix::docker_cli`]), not yet run.
pub fn buildkit_build(dir: &std::path::Path, tag: &str) -> std::process::Command {
    super::matrix::docker_build(dir, tag, true)
}
