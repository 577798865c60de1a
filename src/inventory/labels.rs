//! An image's labels, compact: a key-sorted vector of pairs sized to fit. A host lists
//! thousands of images with a handful of labels each; a `BTreeMap` would allocate a
//! 500-byte node per image for them.

use std::fmt;

use serde::de::{MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Labels (`config.Labels`), each key once, in key order.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Labels(Vec<(String, String)>);

impl Labels {
    /// No labels.
    #[must_use]
    pub const fn new() -> Self {
        Self(Vec::new())
    }

    fn find(&self, key: &str) -> Result<usize, usize> {
        self.0.binary_search_by(|(k, _)| k.as_str().cmp(key))
    }

    /// The value of `key`.
    #[must_use]
    pub fn get(&self, key: &str) -> Option<&String> {
        self.find(key).ok().map(|i| &self.0[i].1)
    }

    /// Whether `key` is set (to any value).
    #[must_use]
    pub fn contains_key(&self, key: &str) -> bool {
        self.find(key).is_ok()
    }

    /// Set `key` to `value`; returns the value it replaces.
    pub fn insert(&mut self, key: String, value: String) -> Option<String> {
        match self.find(&key) {
            Ok(i) => Some(std::mem::replace(&mut self.0[i].1, value)),
            Err(i) => {
                self.0.insert(i, (key, value));
                None
            }
        }
    }

    /// The pairs in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &String)> {
        self.0.iter().map(|(k, v)| (k, v))
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

impl FromIterator<(String, String)> for Labels {
    /// Sorted by key; of repeated keys the last value stays (as a map's `insert` would).
    fn from_iter<I: IntoIterator<Item = (String, String)>>(pairs: I) -> Self {
        let mut pairs: Vec<(String, String)> = pairs.into_iter().collect();
        // Stable: repeated keys keep their order, and the last of each run is the one kept.
        pairs.sort_by(|a, b| a.0.cmp(&b.0));
        let mut out: Vec<(String, String)> = Vec::with_capacity(pairs.len());
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

impl<const N: usize> From<[(String, String); N]> for Labels {
    fn from(pairs: [(String, String); N]) -> Self {
        pairs.into_iter().collect()
    }
}

impl<'a> IntoIterator for &'a Labels {
    type Item = (&'a String, &'a String);
    type IntoIter = std::iter::Map<
        std::slice::Iter<'a, (String, String)>,
        fn(&'a (String, String)) -> (&'a String, &'a String),
    >;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter().map(|(k, v)| (k, v))
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

/// From a JSON object (`null` is no labels), as the engine lists them.
impl<'de> Deserialize<'de> for Labels {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Pairs;
        impl<'de> Visitor<'de> for Pairs {
            type Value = Labels;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object of label keys and values, or null")
            }
            fn visit_unit<E>(self) -> Result<Labels, E> {
                Ok(Labels::new())
            }
            fn visit_none<E>(self) -> Result<Labels, E> {
                Ok(Labels::new())
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Labels, D::Error> {
                d.deserialize_map(self)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Labels, A::Error> {
                let mut pairs = Vec::with_capacity(map.size_hint().unwrap_or(0));
                while let Some(pair) = map.next_entry::<String, String>()? {
                    pairs.push(pair);
                }
                Ok(pairs.into_iter().collect())
            }
        }
        deserializer.deserialize_option(Pairs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(k: &str, v: &str) -> (String, String) {
        (k.to_owned(), v.to_owned())
    }

    #[test]
    fn keeps_keys_sorted_and_unique_like_a_map() {
        let mut labels: Labels = [pair("tier", "prod"), pair("a", "1"), pair("tier", "dev")]
            .into_iter()
            .collect();
        assert_eq!(labels.len(), 2);
        assert_eq!(
            labels.get("tier").map(String::as_str),
            Some("dev"),
            "last wins"
        );
        assert_eq!(labels.insert("b".into(), "2".into()), None);
        assert_eq!(labels.insert("a".into(), "3".into()), Some("1".into()));
        let keys: Vec<&str> = labels.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["a", "b", "tier"]);
        assert!(labels.contains_key("b") && !labels.contains_key("c"));
        assert_eq!(labels.get("c"), None);
    }

    #[test]
    fn reads_and_writes_json_objects() {
        let labels: Labels =
            serde_json::from_str(r#"{"z": "1", "stage": "builder"}"#).expect("json");
        assert_eq!(
            labels,
            Labels::from([pair("stage", "builder"), pair("z", "1")])
        );
        assert_eq!(
            serde_json::to_string(&labels).expect("json"),
            r#"{"stage":"builder","z":"1"}"#
        );
        let none: Labels = serde_json::from_str("null").expect("null");
        assert!(none.is_empty());
        let err = serde_json::from_str::<Labels>(r#"{"a": 1}"#).expect_err("a number");
        assert!(err.to_string().contains("invalid type"), "{err}");
    }
}
