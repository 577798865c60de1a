//! The history's plain values: what it knows about one image ([`Record`]), where each time
//! came from ([`Source`]), and the whole history of one engine ([`History`]).

use chrono::{DateTime, Utc};
use rustc_hash::{FxHashMap, FxHashSet};
use serde::{Deserialize, Serialize};

use super::uses::Uses;
use crate::inventory::ImageId;

/// Where a recorded time came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// The image's `Created`, taken when the history was first created on this host.
    Created,
    /// "Now" when the history was first created (nobody saw any use before).
    Adopted,
    /// An engine event (load, pull, tag, import, container create or start, …).
    Event,
    /// First seen in a listing of the engine's images (no event saw it arrive).
    Listing,
    /// Used by a container when the history was reconciled.
    Container,
    /// Assumed used at the end of a gap in the events (`gap_policy: assume_used`).
    Gap,
}

impl Source {
    /// The stable name, as in the file and JSON.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Created => "created",
            Source::Adopted => "adopted",
            Source::Event => "event",
            Source::Listing => "listing",
            Source::Container => "container",
            Source::Gap => "gap",
        }
    }
}

/// What the history knows about one image. Times are Unix seconds. 32 bytes: the use
/// count ([`Uses`]) is kept flat, so that it fills what was padding after the sources.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct Record {
    pub first_seen: i64,
    pub last_used: i64,
    pub first_seen_by: Source,
    pub last_used_by: Source,
    /// The decayed use count as of `uses_at` ([`Uses`]); 0 when never counted.
    #[serde(default)]
    pub uses: f32,
    /// When `uses` was last brought up to date; 0 when never.
    #[serde(default)]
    pub uses_at: i64,
}

// `uses` compares by bits: a count is never NaN.
impl PartialEq for Record {
    fn eq(&self, o: &Self) -> bool {
        (
            self.first_seen,
            self.last_used,
            self.first_seen_by,
            self.last_used_by,
        ) == (o.first_seen, o.last_used, o.first_seen_by, o.last_used_by)
            && self.use_count() == o.use_count()
    }
}

impl Eq for Record {}

impl Record {
    /// First seen and used at `at`, both from `by`.
    #[must_use]
    pub fn new(at: i64, by: Source) -> Self {
        Self {
            first_seen: at,
            last_used: at,
            first_seen_by: by,
            last_used_by: by,
            uses: 0.0,
            uses_at: 0,
        }
    }

    /// The use count ([`Uses`]).
    #[must_use]
    pub fn use_count(&self) -> Uses {
        Uses {
            count: self.uses,
            at: self.uses_at,
        }
    }

    /// Replace the use count.
    pub fn set_use_count(&mut self, u: Uses) {
        self.uses = u.count;
        self.uses_at = u.at;
    }

    /// Record a use at `at` (kept when a later use is already known; on a tie the newer
    /// observation names the source).
    pub fn used(&mut self, at: i64, by: Source) {
        if at >= self.last_used {
            self.last_used = at;
            self.last_used_by = by;
        }
    }

    #[must_use]
    pub fn first_seen_time(&self) -> DateTime<Utc> {
        unix(self.first_seen)
    }

    #[must_use]
    pub fn last_used_time(&self) -> DateTime<Utc> {
        unix(self.last_used)
    }
}

/// Unix seconds as a time (the epoch when out of range).
#[must_use]
pub fn unix(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(secs, 0).unwrap_or_default()
}

/// The records by image ID, as the planner reads them.
pub type Records = FxHashMap<ImageId, Record>;

/// The whole history of one engine.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct History {
    /// The engine the history belongs to (`/info` `ID`); empty until the first reconcile.
    pub engine_id: String,
    /// `history.half_life` in seconds, for the use counts (not written; 0: the default).
    pub half_life: i64,
    /// `timeNano` of the last applied event; events up to it need no replay.
    pub checkpoint: Option<i64>,
    pub images: Records,
    /// True when no history existed before on this host: the first reconcile adopts the
    /// images present (`first_seen = Created`).
    pub adopt: bool,
    /// Changed since it was last written.
    pub dirty: bool,
    /// Events were lost up to this time (not written: the next reconcile applies it).
    pub pending_gap: Option<DateTime<Utc>>,
    /// Images this process saw go (deleted, or gone from a listing): a record another writer
    /// still has for them is not merged back in (not written).
    pub gone: FxHashSet<ImageId>,
}

impl History {
    /// The history of a host that never had one: the first reconcile adopts.
    #[must_use]
    pub fn first_run() -> Self {
        Self {
            adopt: true,
            dirty: true,
            ..Self::default()
        }
    }

    /// A history that starts over (its file was unusable): every image is first seen now,
    /// so nothing becomes eligible by accident.
    #[must_use]
    pub fn start_over() -> Self {
        Self {
            dirty: true,
            ..Self::default()
        }
    }

    /// Record a use of `image` at `at`; an unknown image is first seen then.
    pub fn used(&mut self, image: ImageId, at: i64, by: Source) {
        self.images
            .entry(image)
            .and_modify(|r| r.used(at, by))
            .or_insert_with(|| Record::new(at, by));
        self.dirty = true;
    }

    /// Record a use of `image` at `at` that counts ([`Uses`]): an event of the engine.
    pub fn used_counted(&mut self, image: ImageId, at: i64) {
        self.used(image, at, Source::Event);
        if let Some(r) = self.images.get_mut(&image) {
            let mut u = r.use_count();
            u.add(at, self.half_life);
            r.set_use_count(u);
        }
    }

    /// Forget a deleted image.
    pub fn removed(&mut self, image: ImageId) {
        self.gone.insert(image);
        if self.images.remove(&image).is_some() {
            self.dirty = true;
        }
    }

    /// Take in what another writer of the same file recorded (read back just before this
    /// history is written): every record by image ID, the earliest `first_seen` and the
    /// latest `last_used`, each with its source; the later checkpoint. Images this process
    /// saw go stay gone; a file of another engine changes nothing.
    pub fn merge(&mut self, other: History) {
        self.merge_records(other.engine_id, other.checkpoint, other.images);
    }

    /// [`History::merge`] of a history given by its parts, its records as they come (read
    /// straight from a file, with no map of them built).
    pub fn merge_records(
        &mut self,
        engine_id: String,
        checkpoint: Option<i64>,
        records: impl IntoIterator<Item = (ImageId, Record)>,
    ) {
        if !engine_id.is_empty() && !self.engine_id.is_empty() && engine_id != self.engine_id {
            return;
        }
        if self.engine_id.is_empty() {
            self.engine_id = engine_id;
        }
        if let Some(c) = checkpoint {
            self.advance(c);
        }
        for (id, theirs) in records {
            if self.gone.contains(&id) {
                continue;
            }
            let mine = self.images.entry(id).or_insert(theirs);
            if theirs.first_seen < mine.first_seen {
                mine.first_seen = theirs.first_seen;
                mine.first_seen_by = theirs.first_seen_by;
                self.dirty = true;
            }
            if theirs.last_used > mine.last_used {
                mine.last_used = theirs.last_used;
                mine.last_used_by = theirs.last_used_by;
                self.dirty = true;
            }
            let mut u = mine.use_count();
            u.merge(theirs.use_count());
            if u != mine.use_count() {
                mine.set_use_count(u);
                self.dirty = true;
            }
        }
    }

    /// Move the checkpoint back to `time_nano` (the engine's clock stepped back: its newer
    /// events carry older times).
    pub fn rewind(&mut self, time_nano: i64) {
        if self.checkpoint.is_some_and(|c| c > time_nano) {
            self.checkpoint = Some(time_nano);
            self.dirty = true;
        }
    }

    /// Move the checkpoint forward to `time_nano`.
    pub fn advance(&mut self, time_nano: i64) {
        if self.checkpoint.is_none_or(|c| time_nano > c) {
            self.checkpoint = Some(time_nano);
            self.dirty = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::fake::fake_id;

    #[test]
    fn uses_only_move_forward_and_removal_forgets() {
        let mut h = History::default();
        let a = fake_id("a");
        h.used(a, 100, Source::Event);
        assert_eq!(h.images[&a], Record::new(100, Source::Event));
        h.used(a, 50, Source::Container);
        assert_eq!(h.images[&a].last_used, 100, "an older use changes nothing");
        h.used(a, 200, Source::Container);
        let r = h.images[&a];
        assert_eq!((r.first_seen, r.first_seen_by), (100, Source::Event));
        assert_eq!((r.last_used, r.last_used_by), (200, Source::Container));
        assert_eq!(r.use_count(), crate::history::Uses::NONE, "no use counted");
        h.used_counted(a, 300);
        h.used_counted(a, 300);
        let r = h.images[&a];
        assert_eq!((r.uses, r.uses_at, r.last_used), (2.0, 300, 300));
        assert_eq!(std::mem::size_of::<Record>(), 32, "the count costs 8 bytes");
        h.removed(a);
        assert!(h.images.is_empty() && h.dirty);
        h.advance(5);
        h.advance(3);
        assert_eq!(h.checkpoint, Some(5));
    }
}
