//! Label predicates compiled for the planner: every distinct label key that a policy or a
//! protection predicate names is looked up once per image, then predicates compare values.
//! Reference globs see every spelling of a reference ([`crate::reference`]); the spellings
//! are written once per image ([`Names`]), not once per glob. Same results as
//! the plain rules of `Matcher`, `LabelPredicate` and
//! [`crate::config::RefGlob::matches`] (the planner's property tests check them against an
//! oracle written out plainly).

use crate::config::{Config, Dangling, LabelPredicate, Matcher, RefGlob};
use crate::inventory::{Image, Labels};
use crate::reference::{Other, other_spelling};

/// Every spelling of one image's references ([`crate::reference::spellings`]), written into
/// one buffer that is reused from image to image (no allocation once warm).
#[derive(Debug, Default)]
pub(super) struct Names {
    text: String,
    ends: Vec<usize>,
}

impl Names {
    /// Replace the contents with the spellings of `references` (tags and digests).
    pub fn fill<'r>(&mut self, references: impl IntoIterator<Item = &'r String>) {
        self.text.clear();
        self.ends.clear();
        for r in references {
            self.push(&[r]);
            match other_spelling(r) {
                Some(Other::Familiar(short)) => self.push(&[short]),
                Some(Other::Qualified(prefix)) => self.push(&[prefix, r]),
                None => {}
            }
        }
    }

    fn push(&mut self, parts: &[&str]) {
        for p in parts {
            self.text.push_str(p);
        }
        self.ends.push(self.text.len());
    }

    /// Empty: the image has no reference (or the buffer was not filled).
    pub fn clear(&mut self) {
        self.text.clear();
        self.ends.clear();
    }

    fn iter(&self) -> impl Iterator<Item = &str> {
        let starts = std::iter::once(0).chain(self.ends.iter().copied());
        starts.zip(&self.ends).map(|(a, &b)| &self.text[a..b])
    }

    /// Whether any spelling matches any of `globs`.
    fn any_match(&self, globs: &[RefGlob]) -> bool {
        self.iter()
            .any(|n| globs.iter().any(|g| g.matches_spelling(n)))
    }
}

/// One predicate, with its key as an index into [`Compiled::keys`].
#[derive(Debug, Clone, Copy)]
enum Test<'c> {
    Exists(usize),
    Equals(usize, &'c str),
    NotEquals(usize, &'c str),
}

impl Test<'_> {
    fn holds(self, values: &[Option<&str>]) -> bool {
        match self {
            Test::Exists(k) => values[k].is_some(),
            Test::Equals(k, v) => values[k] == Some(v),
            Test::NotEquals(k, v) => values[k] != Some(v),
        }
    }
}

/// The policies' matchers and the protection predicates, compiled.
pub(super) struct Compiled<'c> {
    keys: Vec<&'c str>,
    policies: Vec<(&'c Matcher, Vec<Test<'c>>)>,
    protect: Vec<Test<'c>>,
    protect_references: &'c [RefGlob],
    /// Whether any glob reads references (else [`Names`] need not be filled).
    reads_names: bool,
}

impl<'c> Compiled<'c> {
    pub fn new(config: &'c Config) -> Self {
        let mut keys: Vec<&'c str> = Vec::new();
        let mut compile = |p: &'c LabelPredicate| {
            let key = p.key();
            let k = keys.iter().position(|x| *x == key).unwrap_or_else(|| {
                keys.push(key);
                keys.len() - 1
            });
            match p {
                LabelPredicate::Exists(_) => Test::Exists(k),
                LabelPredicate::Equals(_, v) => Test::Equals(k, v.as_str()),
                LabelPredicate::NotEquals(_, v) => Test::NotEquals(k, v.as_str()),
            }
        };
        let policies = config
            .policies
            .iter()
            .map(|p| {
                (
                    &p.matcher,
                    p.matcher.labels.iter().map(&mut compile).collect(),
                )
            })
            .collect();
        let protect = config.protect.labels.iter().map(&mut compile).collect();
        let reads_names = !config.protect.references.is_empty()
            || config
                .policies
                .iter()
                .any(|p| !p.matcher.references.is_empty());
        Self {
            keys,
            policies,
            protect,
            protect_references: &config.protect.references,
            reads_names,
        }
    }

    /// The image's spellings into `names`, when any glob will read them.
    pub fn names(&self, image: &Image, names: &mut Names) {
        if self.reads_names {
            names.fill(image.all_references());
        } else {
            names.clear();
        }
    }

    /// The image's value for every compiled key, into `out` (cleared first). One pass over
    /// the image's labels: each key string is read once, and string equality compares
    /// lengths before bytes, so most pairs never touch the heap.
    pub fn values<'i>(&self, labels: &'i Labels, out: &mut Vec<Option<&'i str>>) {
        out.clear();
        out.resize(self.keys.len(), None);
        for (key, value) in labels {
            if let Some(k) = self.keys.iter().position(|c| *c == key) {
                out[k] = Some(value);
            }
        }
    }

    /// The first policy whose matcher selects the image (`names` filled by [`Self::names`]).
    /// References are `repo:tag` and `repo@sha256:…` alike; an image is dangling when it has
    /// neither.
    pub fn first_match(
        &self,
        image: &Image,
        values: &[Option<&str>],
        names: &Names,
    ) -> Option<usize> {
        let dangling = image.is_dangling();
        self.policies.iter().position(|(m, tests)| {
            let dangling_ok = match m.dangling {
                Dangling::Any => true,
                Dangling::Only => dangling,
                Dangling::Never => !dangling,
            };
            dangling_ok
                && tests.iter().all(|t| t.holds(values))
                && (m.references.is_empty() || names.any_match(&m.references))
        })
    }

    /// The index of the first protection glob that a spelling matches.
    pub fn protected_by_reference(&self, names: &Names) -> Option<usize> {
        self.protect_references
            .iter()
            .position(|g| names.iter().any(|n| g.matches_spelling(n)))
    }

    /// The index of the first protection label predicate that holds.
    pub fn protected_by_label(&self, values: &[Option<&str>]) -> Option<usize> {
        self.protect.iter().position(|t| t.holds(values))
    }
}
