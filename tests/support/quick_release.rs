//! The release builds the package tests make (`scripts/package.sh`, the image's
//! `deploy/image/build.sh`), made quick: the scripts run as shipped, with cargo's release
//! profile overridden through its environment (no LTO, optimisation 0, many codegen units).
//! What these tests check (the files, the units, the maintainer scripts, static linking,
//! `DT_RELR`, the image running as nonroot) does not depend on the optimiser, and two fat-LTO
//! builds took most of the suite's time. The shipped profile itself is built by `.ci/run`.

use std::process::Command;

/// Make the release builds `cmd` starts quick.
pub fn quick_release(cmd: &mut Command) -> &mut Command {
    cmd.env("CARGO_PROFILE_RELEASE_LTO", "false")
        .env("CARGO_PROFILE_RELEASE_OPT_LEVEL", "0")
        .env("CARGO_PROFILE_RELEASE_CODEGEN_UNITS", "256")
        .env("CARGO_PROFILE_RELEASE_INCREMENTAL", "false")
}
