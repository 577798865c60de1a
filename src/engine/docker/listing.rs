//! `GET /images/json?all=true`, read straight into the inventory's images: each image of the
//! answer's text becomes an [`Image`] as it is parsed, without a list of the engine's full
//! models in between. At 10 000 images those models (every field, labels in hash maps)
//! held more memory than the answer and the inventory together.

use std::borrow::Cow;
use std::fmt;

use chrono::DateTime;
use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

use super::convert::{image_id, tags_and_digests};
use super::raw::ApiVersion;
use crate::engine::EngineError;
use crate::inventory::{Image, Labels, Strings};

/// The request on the negotiated API version: every image, intermediate ones included.
pub(super) fn path(api: ApiVersion) -> String {
    format!("{}/images/json?all=true", api.prefix())
}

/// One image as the engine lists it; only what the inventory keeps.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Listed<'a> {
    #[serde(borrow)]
    id: Cow<'a, str>,
    #[serde(default, borrow)]
    parent_id: Option<Cow<'a, str>>,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    #[serde(default)]
    repo_digests: Option<Vec<String>>,
    #[serde(default, borrow)]
    labels: ListedLabels<'a>,
    created: i64,
    #[serde(default)]
    size: i64,
    /// -1 unless the engine computed it (`shared-size=1`, API 1.42+).
    #[serde(default = "minus_one")]
    shared_size: i64,
}

const fn minus_one() -> i64 {
    -1
}

/// A JSON string, borrowed from the answer's text unless it has escapes.
struct Text<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Str<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for Str<'a> {
            type Value = Text<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Text<'a>, E> {
                Ok(Text(Cow::Borrowed(s)))
            }
            fn visit_str<E>(self, s: &str) -> Result<Text<'a>, E> {
                Ok(Text(Cow::Owned(s.to_owned())))
            }
        }
        deserializer.deserialize_str(Str(std::marker::PhantomData))
    }
}

/// `Labels` as listed: an object of strings, or `null`.
#[derive(Default)]
struct ListedLabels<'a>(Vec<(Text<'a>, Text<'a>)>);

impl<'de: 'a, 'a> Deserialize<'de> for ListedLabels<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Pairs<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for Pairs<'a> {
            type Value = ListedLabels<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object of label keys and values, or null")
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(ListedLabels::default())
            }
            fn visit_none<E>(self) -> Result<Self::Value, E> {
                Ok(ListedLabels::default())
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
                d.deserialize_map(self)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut pairs = Vec::with_capacity(map.size_hint().unwrap_or(0));
                while let Some(pair) = map.next_entry()? {
                    pairs.push(pair);
                }
                Ok(ListedLabels(pairs))
            }
        }
        deserializer.deserialize_option(Pairs(std::marker::PhantomData))
    }
}

fn to_image(l: Listed<'_>, strings: &mut Strings) -> Result<Image, EngineError> {
    let id = image_id("an image", &l.id)?;
    let parent_id = match l.parent_id.as_deref().unwrap_or_default() {
        "" => None,
        p => Some(image_id(&format!("image {id} with a parent"), p)?),
    };
    let (references, digests) = tags_and_digests(
        l.repo_tags.unwrap_or_default(),
        l.repo_digests.unwrap_or_default(),
    );
    Ok(Image {
        id,
        parent_id,
        references,
        digests,
        labels: Labels::interned(l.labels.0.iter().map(|(k, v)| (&*k.0, &*v.0)), strings),
        created: DateTime::from_timestamp(l.created, 0).unwrap_or_default(),
        last_tagged: None,
        size: u64::try_from(l.size).unwrap_or(0),
        shared_size: u64::try_from(l.shared_size).ok(),
    })
}

/// Why a listing could not be read.
#[derive(Debug)]
pub(super) enum Unreadable {
    /// An image the inventory cannot hold (a malformed ID, with the value).
    Image(EngineError),
    /// The answer is not a list of images (the cause, for [`EngineError::Garbled`]).
    Text(String),
}

/// Reads a listing as it arrives: the answer is cut into the array's elements and each one
/// becomes an [`Image`] as soon as it is complete, so that neither the whole answer nor the
/// engine's models are ever held, only the images and one unfinished element.
#[derive(Default)]
pub(super) struct Reader {
    /// Bytes not yet read into an image: the unfinished element.
    pending: Vec<u8>,
    /// How far `pending` has been scanned.
    scanned: usize,
    /// Where in the answer `pending` starts (for error positions).
    offset: usize,
    state: State,
    /// Bracket depth inside the current element.
    depth: usize,
    in_string: bool,
    escaped: bool,
    images: Vec<Image>,
    /// The label strings met so far, each held once.
    strings: Strings,
}

#[derive(Default, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Before the opening `[`.
    #[default]
    Start,
    /// Between elements (after `[` or a `,`).
    Between,
    /// Inside an element.
    Element,
    /// After the closing `]`.
    Done,
}

impl Reader {
    /// Read the next piece of the answer.
    pub(super) fn feed(&mut self, chunk: &[u8]) -> Result<(), Unreadable> {
        self.pending.extend_from_slice(chunk);
        let mut start = 0; // of the current element, or of what is left to keep
        let mut i = self.scanned;
        while i < self.pending.len() {
            let b = self.pending[i];
            match self.state {
                State::Start | State::Between | State::Done if b.is_ascii_whitespace() => {
                    start = i + 1;
                }
                State::Start if b == b'[' => {
                    self.state = State::Between;
                    start = i + 1;
                }
                State::Between if b == b']' && self.images.is_empty() => {
                    self.state = State::Done;
                    start = i + 1;
                }
                State::Start | State::Done => {
                    return Err(self.unexpected(i, "a list of images"));
                }
                State::Between => {
                    self.state = State::Element;
                    start = i;
                    continue; // the element's first byte
                }
                State::Element => {
                    if self.escaped {
                        self.escaped = false;
                    } else if self.in_string {
                        // Most of a listing is strings: jump to this one's next quote or
                        // backslash instead of looking at every byte.
                        let Some(k) = memchr::memchr2(b'"', b'\\', &self.pending[i..]) else {
                            i = self.pending.len();
                            continue;
                        };
                        i += k;
                        if self.pending[i] == b'"' {
                            self.in_string = false;
                        } else {
                            self.escaped = true;
                        }
                    } else {
                        match b {
                            b'"' => self.in_string = true,
                            b'{' | b'[' => self.depth += 1,
                            b'}' | b']' if self.depth > 0 => self.depth -= 1,
                            b',' | b']' if self.depth == 0 => {
                                self.image(start, i)?;
                                self.state = if b == b',' {
                                    State::Between
                                } else {
                                    State::Done
                                };
                                start = i + 1;
                            }
                            _ => {}
                        }
                    }
                }
            }
            i += 1;
        }
        if self.state != State::Element {
            start = self.pending.len();
        }
        self.pending.drain(..start);
        self.offset += start;
        self.scanned = self.pending.len();
        Ok(())
    }

    /// The images, once the whole answer was read.
    pub(super) fn finish(mut self) -> Result<Vec<Image>, Unreadable> {
        if self.state != State::Done {
            return Err(Unreadable::Text(format!(
                "the answer ended after {} bytes, before its list of images did",
                self.offset + self.pending.len()
            )));
        }
        self.images.shrink_to_fit();
        Ok(self.images)
    }

    /// `pending[start..end]` is one element: read it into an image.
    fn image(&mut self, start: usize, end: usize) -> Result<(), Unreadable> {
        let text = &self.pending[start..end];
        let listed: Listed<'_> = serde_json::from_slice(text).map_err(|e| {
            Unreadable::Text(format!(
                "image {} of the list (at byte {}): {e}",
                self.images.len() + 1,
                self.offset + start
            ))
        })?;
        let image = to_image(listed, &mut self.strings).map_err(Unreadable::Image)?;
        self.images.push(image);
        Ok(())
    }

    fn unexpected(&self, at: usize, expected: &str) -> Unreadable {
        Unreadable::Text(format!(
            "expected {expected}, found {:?} at byte {}",
            char::from(self.pending[at]),
            self.offset + at
        ))
    }
}

/// The images of a whole listing's text (the answer in one piece).
#[cfg(test)]
fn parse(body: &str) -> Result<Vec<Image>, Unreadable> {
    let mut reader = Reader::default();
    reader.feed(body.as_bytes())?;
    reader.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const B: &str = "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

    #[test]
    fn the_request_lists_every_image() {
        assert_eq!(path(ApiVersion::v1(41)), "/v1.41/images/json?all=true");
    }

    #[test]
    fn maps_the_fields_and_drops_the_placeholders() {
        let body = format!(
            r#"[{{"Id": "{A}", "ParentId": "", "RepoTags": ["<none>:<none>", "app:1"],
                 "RepoDigests": ["<none>@<none>"], "Created": 1700000000, "Size": 4096,
                 "SharedSize": -1, "VirtualSize": 4096, "Containers": -1,
                 "Labels": {{"stage": "builder"}}}},
               {{"Id": "{B}", "ParentId": "{A}", "RepoTags": null, "RepoDigests": null,
                 "Created": 1700000001, "Size": 1, "SharedSize": 7, "Labels": null}}]"#
        );
        let images = parse(&body).expect("a listing");
        let [img, child] = images.as_slice() else {
            panic!("two images: {images:?}")
        };
        assert_eq!(img.id.to_string(), A);
        assert_eq!(img.parent_id, None);
        assert_eq!(img.references, vec!["app:1".to_owned()]);
        assert!(img.digests.is_empty());
        assert_eq!(img.labels.get("stage"), Some("builder"));
        assert_eq!(img.created.timestamp(), 1_700_000_000);
        assert_eq!((img.size, img.shared_size), (4096, None));
        assert_eq!(child.parent_id, Some(img.id));
        assert_eq!(child.shared_size, Some(7));
        assert!(child.is_dangling() && child.labels.is_empty());
        assert!(parse("[]").expect("no images").is_empty());
    }

    #[test]
    fn malformed_ids_name_the_value() {
        for (body, value) in [
            (
                r#"[{"Id": "sha256:aa", "Created": 1}]"#.to_owned(),
                r#""sha256:aa""#,
            ),
            (
                format!(r#"[{{"Id": "{A}", "ParentId": "bogus", "Created": 1}}]"#),
                r#""bogus""#,
            ),
        ] {
            let Err(Unreadable::Image(e)) = parse(&body) else {
                panic!("rejected: {body}")
            };
            assert!(e.to_string().contains(value), "{e}");
            assert!(e.to_string().contains("nothing was deleted"), "{e}");
        }
    }

    #[test]
    fn reads_the_same_images_however_the_answer_is_cut() {
        // Brackets, commas, quotes and backslashes inside strings; nested objects.
        let body = format!(
            r#" [ {{"Id": "{A}", "Created": 1, "RepoTags": ["a:1", "b:2"],
                   "Labels": {{"x,y": "]}}", "q\\\"": "[{{\\\\", "e": ""}}}} ,
                 {{"Id": "{B}", "ParentId": "{A}", "Created": 2, "Labels": {{}}}} ] "#
        );
        let whole = parse(&body).expect("a listing");
        assert_eq!(whole.len(), 2);
        assert_eq!(whole[0].labels.get("x,y"), Some("]}"));
        assert_eq!(whole[0].labels.get("q\\\""), Some("[{\\\\"));
        assert_eq!(whole[1].parent_id, Some(whole[0].id));
        let bytes = body.as_bytes();
        for cut in 0..=bytes.len() {
            let mut reader = Reader::default();
            reader.feed(&bytes[..cut]).expect("first part");
            reader.feed(&bytes[cut..]).expect("second part");
            assert_eq!(reader.finish().expect("whole"), whole, "cut at {cut}");
        }
        let mut reader = Reader::default();
        for b in bytes {
            reader.feed(std::slice::from_ref(b)).expect("one byte");
        }
        assert_eq!(reader.finish().expect("whole"), whole, "byte by byte");
    }

    #[test]
    fn other_text_is_not_a_listing() {
        for body in [
            "{\"message\": \"page not found\"}",
            "[{\"Created\": 1}]",
            &format!(r#"[{{"Id": "{A}", "Created": "yesterday"}}]"#),
            &format!(r#"[{{"Id": "{A}", "Created": 1, "Labels": {{"a": 1}}}}]"#),
            "[] []",
            "",
            "[",
            &format!(r#"[{{"Id": "{A}", "Created": 1}},]"#),
            &format!(r#"[{{"Id": "{A}", "Created": 1}}"#),
            &format!(r#"[{{"Id": "{A}", "Created": 1, "Labels": {{"a": "b"}}"#),
            "[1]",
        ] {
            let Err(Unreadable::Text(cause)) = parse(body) else {
                panic!("not a listing: {body:?}")
            };
            assert!(!cause.is_empty(), "{body:?}");
        }
    }
}
