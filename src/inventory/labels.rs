//! An image's labels, compact: a key-sorted slice of pairs, the strings and the slices shared.
//! A host lists thousands of images with a handful of labels each, mostly the same ones
//! (`stage=builder`, a project, a tier): a `BTreeMap` of `String`s would allocate a
//! 500-byte node and a string per key and value for every image. Listings intern the
//! strings and the sets of labels ([`Strings`]), so each distinct key or value, and each
//! distinct set of labels, is held once: images with the same labels share one slice.

use std::fmt;
use std::sync::Arc;

use rustc_hash::FxHashSet;
use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};

/// The pairs of a [`Labels`], in key order.
type Pairs = Arc<[(Arc<str>, Arc<str>)]>;

/// Labels (`config.Labels`), each key once, in key order. `None` without labels.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Labels(Option<Pairs>);

impl Labels {
    /// No labels.
    #[must_use]
    pub const fn new() -> Self {
        Self(None)
    }

    /// `pairs` with their strings, and the set itself, taken from (or added to) `strings`.
    pub fn interned<'a>(
        pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
        strings: &mut Strings,
    ) -> Self {
        let pairs = sorted(
            pairs
                .into_iter()
                .map(|(k, v)| (strings.get(k), strings.get(v))),
        );
        if pairs.is_empty() {
            return Self::new();
        }
        Self(Some(strings.set(pairs)))
    }

    fn pairs(&self) -> &[(Arc<str>, Arc<str>)] {
        self.0.as_deref().unwrap_or_default()
    }

    fn find(&self, key: &str) -> Result<usize, usize> {
        self.pairs().binary_search_by(|(k, _)| (**k).cmp(key))
    }

    /// The value of `key`.
    #[must_use]
    pub fn get(&self, key: &str) -> Option<&str> {
        self.find(key).ok().map(|i| &*self.pairs()[i].1)
    }

    /// Whether `key` is set (to any value).
    #[must_use]
    pub fn contains_key(&self, key: &str) -> bool {
        self.find(key).is_ok()
    }

    /// Set `key` to `value`; returns the value it replaces. (The pairs are copied: labels
    /// are built this way only by hand, listings intern theirs.)
    pub fn insert(
        &mut self,
        key: impl Into<Arc<str>>,
        value: impl Into<Arc<str>>,
    ) -> Option<Arc<str>> {
        let key = key.into();
        let mut pairs = self.pairs().to_vec();
        let replaced = match self.find(&key) {
            Ok(i) => Some(std::mem::replace(&mut pairs[i].1, value.into())),
            Err(i) => {
                pairs.insert(i, (key, value.into()));
                None
            }
        };
        self.0 = Some(pairs.into());
        replaced
    }

    /// The pairs in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.into_iter()
    }

    /// How many labels.
    #[must_use]
    pub fn len(&self) -> usize {
        self.pairs().len()
    }

    /// True without labels.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.pairs().is_empty()
    }
}

/// Sorted by key; of repeated keys the last value stays (as a map's `insert` would).
fn sorted(pairs: impl Iterator<Item = (Arc<str>, Arc<str>)>) -> Vec<(Arc<str>, Arc<str>)> {
    let mut pairs: Vec<(Arc<str>, Arc<str>)> = pairs.collect();
    // Stable: repeated keys keep their order, and the last of each run is the one kept.
    pairs.sort_by(|a, b| a.0.cmp(&b.0));
    let mut out: Vec<(Arc<str>, Arc<str>)> = Vec::with_capacity(pairs.len());
    for pair in pairs {
        match out.last_mut() {
            Some(last) if last.0 == pair.0 => *last = pair,
            _ => out.push(pair),
        }
    }
    out
}

impl<K: Into<Arc<str>>, V: Into<Arc<str>>> FromIterator<(K, V)> for Labels {
    /// Sorted by key; of repeated keys the last value stays (as a map's `insert` would).
    fn from_iter<I: IntoIterator<Item = (K, V)>>(pairs: I) -> Self {
        let pairs = sorted(pairs.into_iter().map(|(k, v)| (k.into(), v.into())));
        if pairs.is_empty() {
            return Self::new();
        }
        Self(Some(pairs.into()))
    }
}

impl<K: Into<Arc<str>>, V: Into<Arc<str>>, const N: usize> From<[(K, V); N]> for Labels {
    fn from(pairs: [(K, V); N]) -> Self {
        pairs.into_iter().collect()
    }
}

impl<'a> IntoIterator for &'a Labels {
    type Item = (&'a str, &'a str);
    type IntoIter = std::iter::Map<
        std::slice::Iter<'a, (Arc<str>, Arc<str>)>,
        fn(&'a (Arc<str>, Arc<str>)) -> (&'a str, &'a str),
    >;

    fn into_iter(self) -> Self::IntoIter {
        self.pairs().iter().map(|(k, v)| (&**k, &**v))
    }
}

impl fmt::Debug for Labels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl Serialize for Labels {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.len()))?;
        for (k, v) in self {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

/// The distinct strings of one listing's labels, and its distinct sets of labels, each held
/// once.
#[derive(Debug, Default)]
pub struct Strings {
    strings: FxHashSet<Arc<str>>,
    sets: FxHashSet<Pairs>,
}

impl Strings {
    /// The shared copy of `s`.
    pub fn get(&mut self, s: &str) -> Arc<str> {
        if let Some(shared) = self.strings.get(s) {
            return Arc::clone(shared);
        }
        let shared: Arc<str> = Arc::from(s);
        self.strings.insert(Arc::clone(&shared));
        shared
    }

    /// The shared copy of a set of labels (sorted, keys unique).
    fn set(&mut self, pairs: Vec<(Arc<str>, Arc<str>)>) -> Pairs {
        if let Some(shared) = self.sets.get(pairs.as_slice()) {
            return Arc::clone(shared);
        }
        let shared: Pairs = pairs.into();
        self.sets.insert(Arc::clone(&shared));
        shared
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_keys_sorted_and_unique_like_a_map() {
        let mut labels: Labels = [("tier", "prod"), ("a", "1"), ("tier", "dev")]
            .into_iter()
            .collect();
        assert_eq!(labels.len(), 2);
        assert_eq!(labels.get("tier"), Some("dev"), "last wins");
        assert_eq!(labels.insert("b", "2"), None);
        assert_eq!(labels.insert("a", "3").as_deref(), Some("1"));
        let keys: Vec<&str> = labels.iter().map(|(k, _)| k).collect();
        assert_eq!(keys, ["a", "b", "tier"]);
        assert!(labels.contains_key("b") && !labels.contains_key("c"));
        assert_eq!(labels.get("c"), None);
        assert_eq!(
            format!("{labels:?}"),
            r#"{"a": "3", "b": "2", "tier": "dev"}"#
        );
        assert_eq!(
            serde_json::to_string(&labels).expect("json"),
            r#"{"a":"3","b":"2","tier":"dev"}"#
        );
    }

    #[test]
    fn interned_labels_share_their_strings() {
        let mut strings = Strings::default();
        let one = Labels::interned([("stage", "builder"), ("p", "x")], &mut strings);
        let two = Labels::interned([("stage", "builder")], &mut strings);
        assert_eq!(one.get("stage"), Some("builder"));
        assert_eq!(two, Labels::from([("stage", "builder")]));
        let (a, b) = (&one.pairs()[1], &two.pairs()[0]);
        assert!(
            Arc::ptr_eq(&a.0, &b.0) && Arc::ptr_eq(&a.1, &b.1),
            "held once"
        );
        let three = Labels::interned([("p", "x"), ("stage", "builder")], &mut strings);
        let (Some(one), Some(three)) = (&one.0, &three.0) else {
            panic!("labels")
        };
        assert!(
            Arc::ptr_eq(one, three),
            "the same set, in any order, is held once"
        );
        assert_eq!(Labels::interned([], &mut strings), Labels::new());
    }
}
