//! Label predicates compiled for the planner: every distinct label key that a policy or a
//! protection predicate names is looked up once per image, then predicates compare values.
//! Same results as [`crate::config::Matcher::matches`] and [`LabelPredicate::matches`]
//! (the planner's property tests check them against those).

use std::collections::BTreeMap;

use crate::config::{Config, Dangling, LabelPredicate, Matcher};
use crate::inventory::Image;

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
        Self {
            keys,
            policies,
            protect,
        }
    }

    /// The image's value for every compiled key, into `out` (cleared first). One pass over
    /// the image's labels: each key string is read once, and string equality compares
    /// lengths before bytes, so most pairs never touch the heap.
    pub fn values<'i>(&self, labels: &'i BTreeMap<String, String>, out: &mut Vec<Option<&'i str>>) {
        out.clear();
        out.resize(self.keys.len(), None);
        for (key, value) in labels {
            if let Some(k) = self.keys.iter().position(|c| *c == key.as_str()) {
                out[k] = Some(value.as_str());
            }
        }
    }

    /// The first policy whose matcher selects the image. References are `repo:tag` and
    /// `repo@sha256:…` alike; an image is dangling when it has neither.
    pub fn first_match(&self, image: &Image, values: &[Option<&str>]) -> Option<usize> {
        let dangling = image.is_dangling();
        self.policies.iter().position(|(m, tests)| {
            let dangling_ok = match m.dangling {
                Dangling::Any => true,
                Dangling::Only => dangling,
                Dangling::Never => !dangling,
            };
            dangling_ok
                && tests.iter().all(|t| t.holds(values))
                && (m.references.is_empty()
                    || image
                        .all_references()
                        .any(|r| m.references.iter().any(|g| g.matches(r))))
        })
    }

    /// The index of the first protection label predicate that holds.
    pub fn protected_by_label(&self, values: &[Option<&str>]) -> Option<usize> {
        self.protect.iter().position(|t| t.holds(values))
    }
}
