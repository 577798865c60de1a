//! An image's labels, compact: a key-sorted vector of pairs sized to fit, the strings shared.
//! A host lists thousands of images with a handful of labels each, mostly the same ones
//! (`stage=builder`, a project, a tier): a `BTreeMap` of `String`s would allocate a
//! 500-byte node and a string per key and value for every image. Listings intern the
//! strings ([`Strings`]), so each distinct key or value is held once.

use std::fmt;
use std::sync::Arc;

use rustc_hash::FxHashSet;
use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};

/// Labels (`config.Labels`), each key once, in key order.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Labels(Vec<(Arc<str>, Arc<str>)>);

impl Labels {
    /// No labels.
    #[must_use]
    pub const fn new() -> Self {
        Self(Vec::new())
    }

    /// `pairs` with their strings taken from (or added to) `strings`.
    pub fn interned<'a>(
        pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
        strings: &mut Strings,
    ) -> Self {
        pairs
            .into_iter()
            .map(|(k, v)| (strings.get(k), strings.get(v)))
            .collect()
    }

    fn find(&self, key: &str) -> Result<usize, usize> {
        self.0.binary_search_by(|(k, _)| (**k).cmp(key))
    }

    /// The value of `key`.
    #[must_use]
    pub fn get(&self, key: &str) -> Option<&str> {
        self.find(key).ok().map(|i| &*self.0[i].1)
    }

    /// Whether `key` is set (to any value).
    #[must_use]
    pub fn contains_key(&self, key: &str) -> bool {
        self.find(key).is_ok()
    }

    /// Set `key` to `value`; returns the value it replaces.
    pub fn insert(
        &mut self,
        key: impl Into<Arc<str>>,
        value: impl Into<Arc<str>>,
    ) -> Option<Arc<str>> {
        let key = key.into();
        match self.find(&key) {
            Ok(i) => Some(std::mem::replace(&mut self.0[i].1, value.into())),
            Err(i) => {
                self.0.insert(i, (key, value.into()));
                None
            }
        }
    }

    /// The pairs in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.into_iter()
    }

    /// How many labels.
    #[must_use]
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True without labels.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<K: Into<Arc<str>>, V: Into<Arc<str>>> FromIterator<(K, V)> for Labels {
    /// Sorted by key; of repeated keys the last value stays (as a map's `insert` would).
    fn from_iter<I: IntoIterator<Item = (K, V)>>(pairs: I) -> Self {
        let mut pairs: Vec<(Arc<str>, Arc<str>)> = pairs
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        // Stable: repeated keys keep their order, and the last of each run is the one kept.
        pairs.sort_by(|a, b| a.0.cmp(&b.0));
        let mut out: Vec<(Arc<str>, Arc<str>)> = Vec::with_capacity(pairs.len());
        for pair in pairs {
            match out.last_mut() {
                Some(last) if last.0 == pair.0 => *last = pair,
                _ => out.push(pair),
            }
        }
        out.shrink_to_fit();
        Self(out)
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
        self.0.iter().map(|(k, v)| (&**k, &**v))
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

/// The distinct strings of one listing's labels, each held once.
#[derive(Debug, Default)]
pub struct Strings(FxHashSet<Arc<str>>);

impl Strings {
    /// The shared copy of `s`.
    pub fn get(&mut self, s: &str) -> Arc<str> {
        if let Some(shared) = self.0.get(s) {
            return Arc::clone(shared);
        }
        let shared: Arc<str> = Arc::from(s);
        self.0.insert(Arc::clone(&shared));
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
        let (a, b) = (&one.0[1], &two.0[0]);
        assert!(
            Arc::ptr_eq(&a.0, &b.0) && Arc::ptr_eq(&a.1, &b.1),
            "held once"
        );
    }
}
