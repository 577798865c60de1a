//! "Say what the host needs": one line when the image policies matched nothing while the
//! build cache is large, which is what a BuildKit host looks like to an image-only policy.

use crate::execute::CacheSummary;
use crate::units::fmt_bytes;

/// Build cache above which a host whose image policies matched no image gets the line.
pub const HINT_THRESHOLD_BYTES: u64 = 100_000_000;

/// The line for a host whose image policies matched `images_matched` images, with
/// `cache_rules` `build_cache:` rules configured, from the build cache the engine holds once
/// the pass is done (`cache.left_bytes`: what this pass deleted no longer counts) and how much
/// of it is shared with images; `None` when there is nothing to say.
#[must_use]
pub fn host_needs(
    images_matched: usize,
    cache: &CacheSummary,
    cache_rules: usize,
) -> Option<String> {
    let left = cache.left_bytes;
    if images_matched > 0 || left <= HINT_THRESHOLD_BYTES {
        return None;
    }
    let shared = cache.left_shared_bytes.min(left);
    let held = format!(
        "the image policies matched no image, but the engine holds {} of build cache ({} \
         shared with images, {} not): this host builds with BuildKit, which leaves build \
         cache instead of builder-stage images",
        fmt_bytes(left),
        fmt_bytes(shared),
        fmt_bytes(left - shared),
    );
    Some(if cache_rules > 0 {
        format!("{held}; the build_cache: rules manage it (README: Classic builder or BuildKit?)")
    } else {
        format!(
            "{held}; add build_cache: rules to manage it (README: Classic builder or BuildKit?)"
        )
    })
}

#[cfg(test)]
#[path = "host_hint_tests.rs"]
mod tests;
