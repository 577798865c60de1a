//! "Say what the host needs": one line when the image policies matched nothing while the
//! build cache is large, which is what a BuildKit host looks like to an image-only policy.

use crate::units::fmt_bytes;

/// Build cache above which a host whose image policies matched no image gets the line.
pub const HINT_THRESHOLD_BYTES: u64 = 100_000_000;

/// The line for a host whose image policies matched `images_matched` images while its build
/// cache holds `cache_bytes`, with `cache_rules` `build_cache:` rules configured; `None`
/// when there is nothing to say.
#[must_use]
pub fn host_needs(images_matched: usize, cache_bytes: u64, cache_rules: usize) -> Option<String> {
    if images_matched > 0 || cache_bytes <= HINT_THRESHOLD_BYTES {
        return None;
    }
    let held = format!(
        "the image policies matched no image, but the engine holds {} of build cache: this \
         host builds with BuildKit, which leaves build cache instead of builder-stage images",
        fmt_bytes(cache_bytes)
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
mod tests {
    use super::*;

    #[test]
    fn speaks_only_when_images_matched_nothing_and_the_cache_is_large() {
        let big = HINT_THRESHOLD_BYTES + 1;
        assert_eq!(host_needs(1, big, 0), None, "policies matched images");
        assert_eq!(host_needs(0, HINT_THRESHOLD_BYTES, 0), None, "small cache");
        let add = host_needs(0, 4_200_000_000, 0).expect("a line");
        // As the README's "Classic builder or BuildKit?" shows it.
        assert_eq!(
            add,
            "the image policies matched no image, but the engine holds 4.2 GB of build cache: \
             this host builds with BuildKit, which leaves build cache instead of builder-stage \
             images; add build_cache: rules to manage it (README: Classic builder or BuildKit?)"
        );
        let managed = host_needs(0, big, 1).expect("a line");
        assert!(
            managed.contains("the build_cache: rules manage it"),
            "{managed}"
        );
    }
}
