//! Image references and their spellings.
//!
//! Engines spell one reference differently: Docker reports `app:1` and `alpine:3`, Podman
//! `localhost/app:1` and `docker.io/library/alpine:3`. Reference globs see every spelling
//! ([`spellings`]): the one the engine reported, the familiar one the docker CLI prints
//! ([`familiar`]) and the fully qualified one Docker assumes ([`implied_registry`]).
//! `group_by: repository` groups by the familiar repository ([`repository`]).
//!
//! The engine has already validated every reference it reports, so these are prefix rules,
//! not a parser of the whole reference grammar: a name starts with a registry when its first
//! `/`-separated part contains `.` or `:`, is `localhost`, or has an uppercase letter (the
//! rule of the docker reference grammar). Pure string functions; no allocation except in
//! [`spellings`] for the qualified form.

use std::borrow::Cow;

/// Docker Hub, as engines spell it in fully qualified references.
const HUB: &str = "docker.io/";
/// The namespace of Docker Hub's official images.
const OFFICIAL: &str = "docker.io/library/";
/// Podman's registry name for images built, loaded or imported locally.
const LOCAL: &str = "localhost/";

/// True when the reference's first `/`-separated part names a registry (`registry:5000/x`,
/// `ghcr.io/x`, `localhost/x`), false for `app:1` or `team/app:1`.
#[must_use]
pub fn has_registry(reference: &str) -> bool {
    reference.split_once('/').is_some_and(|(first, _)| {
        first == "localhost"
            || first.contains(['.', ':'])
            || first.bytes().any(|b| b.is_ascii_uppercase())
    })
}

/// The familiar form, as the docker CLI prints it: without `docker.io/library/` (official
/// images), `docker.io/` or Podman's `localhost/`. A reference without those prefixes, or
/// whose rest would itself read as a registry, is returned as it is.
///
/// `localhost/app:1` → `app:1`, `docker.io/library/alpine:3` → `alpine:3`,
/// `docker.io/team/app:1` → `team/app:1`, `registry:5000/x/y:tag` → itself.
#[must_use]
pub fn familiar(reference: &str) -> &str {
    if let Some(rest) = reference.strip_prefix(OFFICIAL)
        && !rest.is_empty()
        && !rest.contains('/')
    {
        return rest;
    }
    let rest = reference
        .strip_prefix(HUB)
        .or_else(|| reference.strip_prefix(LOCAL));
    match rest {
        Some(rest) if !rest.is_empty() && !has_registry(rest) => rest,
        _ => reference,
    }
}

/// The registry prefix Docker assumes for a reference that names none: `docker.io/library/`
/// for a one-part name (`alpine:3`), `docker.io/` for a longer one (`team/app:1`). `None`
/// when the reference names its registry.
#[must_use]
pub fn implied_registry(reference: &str) -> Option<&'static str> {
    if has_registry(reference) {
        None
    } else if reference.contains('/') {
        Some(HUB)
    } else {
        Some(OFFICIAL)
    }
}

/// The other spelling of a reference, beside the one the engine reported: its familiar form
/// when that differs, else its fully qualified form when Docker implies a registry, else none.
/// A reference has at most two spellings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Other<'a> {
    /// A suffix of the reported reference (`app:1` for `localhost/app:1`).
    Familiar(&'a str),
    /// A registry prefix to put in front of the reported reference (`docker.io/library/`).
    Qualified(&'static str),
}

/// See [`Other`].
#[must_use]
pub fn other_spelling(reference: &str) -> Option<Other<'_>> {
    let short = familiar(reference);
    if short.len() == reference.len() {
        implied_registry(reference).map(Other::Qualified)
    } else {
        Some(Other::Familiar(short))
    }
}

/// Every spelling of a reference: as reported, then the [`other_spelling`] if any.
pub fn spellings(reference: &str) -> impl Iterator<Item = Cow<'_, str>> {
    let other = other_spelling(reference).map(|o| match o {
        Other::Familiar(s) => Cow::Borrowed(s),
        Other::Qualified(prefix) => Cow::Owned(format!("{prefix}{reference}")),
    });
    std::iter::once(Cow::Borrowed(reference)).chain(other)
}

/// The familiar repository of a `repo:tag` reference: `localhost/app:1` → `app`,
/// `docker.io/library/alpine:3` → `alpine`, `registry:5000/x/y:tag` → `registry:5000/x/y`.
#[must_use]
pub fn repository(reference: &str) -> &str {
    let name = familiar(reference);
    match name.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') => repo,
        _ => name,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(reference: &str) -> Vec<String> {
        spellings(reference).map(Cow::into_owned).collect()
    }

    #[test]
    fn engines_spellings_and_the_familiar_form() {
        // (reported, every spelling)
        let cases: &[(&str, &[&str])] = &[
            // Podman: local images and Hub images are fully qualified.
            ("localhost/app:1", &["localhost/app:1", "app:1"]),
            (
                "localhost/keepme/x:1",
                &["localhost/keepme/x:1", "keepme/x:1"],
            ),
            (
                "docker.io/library/alpine:3",
                &["docker.io/library/alpine:3", "alpine:3"],
            ),
            (
                "docker.io/team/app:1",
                &["docker.io/team/app:1", "team/app:1"],
            ),
            // Docker: familiar names imply Docker Hub.
            ("alpine:3", &["alpine:3", "docker.io/library/alpine:3"]),
            ("keepme/x:1", &["keepme/x:1", "docker.io/keepme/x:1"]),
            // A registry of its own: one spelling on every engine.
            ("registry:5000/x/y:tag", &["registry:5000/x/y:tag"]),
            ("ghcr.io/org/app:2", &["ghcr.io/org/app:2"]),
            ("localhost:5000/app:1", &["localhost:5000/app:1"]),
            // Nested Hub names keep `library/` (as the docker CLI prints them).
            (
                "docker.io/library/a/b:1",
                &["docker.io/library/a/b:1", "library/a/b:1"],
            ),
            // A rest that would read as a registry stays qualified.
            ("localhost/registry.io/x:1", &["localhost/registry.io/x:1"]),
            ("docker.io/Team/x:1", &["docker.io/Team/x:1"]),
            // Digest references follow the same rule.
            (
                "localhost/app@sha256:ab",
                &["localhost/app@sha256:ab", "app@sha256:ab"],
            ),
            (
                "app@sha256:ab",
                &["app@sha256:ab", "docker.io/library/app@sha256:ab"],
            ),
        ];
        for (reported, want) in cases {
            assert_eq!(all(reported), *want, "{reported}");
        }
    }

    #[test]
    fn registry_detection_follows_the_reference_grammar() {
        for yes in [
            "localhost/a",
            "a.b/c",
            "host:5000/c",
            "Host/c",
            "[::1]:5000/a",
        ] {
            assert!(has_registry(yes), "{yes}");
        }
        for no in [
            "app:1",
            "team/app:1",
            "localhostx/a",
            "a_b/c",
            "app@sha256:ab",
        ] {
            assert!(!has_registry(no), "{no}");
        }
    }

    #[test]
    fn repository_is_familiar_and_without_tag() {
        let cases = [
            ("localhost/app:1", "app"),
            ("app:1", "app"),
            ("docker.io/library/alpine:3", "alpine"),
            ("alpine:3", "alpine"),
            ("docker.io/team/app:1", "team/app"),
            ("registry:5000/x/y:tag", "registry:5000/x/y"),
            ("registry:5000/x/y", "registry:5000/x/y"),
        ];
        for (reference, want) in cases {
            assert_eq!(repository(reference), want, "{reference}");
        }
    }

    #[test]
    fn degenerate_inputs_do_not_panic() {
        for odd in [
            "",
            "/",
            "localhost/",
            "docker.io/",
            "docker.io/library/",
            ":",
            "@",
        ] {
            let n = spellings(odd).count();
            assert!((1..=2).contains(&n), "{odd}");
            let _ = repository(odd);
        }
        assert_eq!(familiar("localhost/"), "localhost/");
    }
}
