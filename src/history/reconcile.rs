//! Bring the history in line with what the engine holds now. Pure: values and `now` in.
//!
//! - Adoption (no history existed on this host): the images present get
//!   `first_seen = Created` (so the classic recipe works on the first run) and
//!   `last_used = now` (so `unused_for` never fires on uses nobody saw).
//! - Otherwise an image not in the history is first seen now — never `Created`.
//! - A gap (events lost, or the engine ID changed): with `assume_used`, known images get
//!   `last_used = max(last_used, gap_end)`.
//! - Images used by any container are used now; records of images that are gone are dropped.

use chrono::{DateTime, Utc};
use rustc_hash::FxHashSet;

use super::{History, Record, Source};
use crate::config::GapPolicy;
use crate::inventory::{Container, Image, is_real_time};

/// What a reconcile changed, for the log.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reconciled {
    /// Images adopted on the first run.
    pub adopted: usize,
    /// Images first seen now.
    pub new: usize,
    /// Records dropped because their image is gone.
    pub dropped: usize,
    /// Known images whose `last_used` the gap raised.
    pub gap_used: usize,
    /// The engine ID changed (counted as a gap).
    pub engine_changed: bool,
    /// Records whose times were in the future of `now` (a clock that was ahead), set to now.
    pub clamped: usize,
}

/// Reconcile `history` with the images and containers the engine lists now.
/// `gap_end` is set when events may have been lost up to that time.
pub fn reconcile(
    history: &mut History,
    images: &[Image],
    containers: &[Container],
    engine_id: &str,
    now: DateTime<Utc>,
    gap: Option<DateTime<Utc>>,
    gap_policy: GapPolicy,
) -> Reconciled {
    let mut out = Reconciled::default();
    let now_s = now.timestamp();
    // A gap ends at the latest now (a pass that counts one "up to its reconcile" says MAX).
    let mut gap = gap.map(|t| t.timestamp().min(now.timestamp()));
    if history.engine_id != engine_id {
        if !history.engine_id.is_empty() {
            out.engine_changed = true;
            gap = Some(now_s);
        }
        engine_id.clone_into(&mut history.engine_id);
        history.dirty = true;
    }
    // A time in the future (written under a clock that was ahead) would pin a record: `used`
    // only moves forward. The engine's clock says what now is.
    let tolerance = crate::inventory::FUTURE_TOLERANCE.num_seconds();
    for r in history.images.values_mut() {
        let mut clamped = false;
        if r.first_seen > now_s + tolerance {
            r.first_seen = now_s;
            clamped = true;
        }
        if r.last_used > now_s + tolerance {
            r.last_used = now_s;
            clamped = true;
        }
        if r.uses_at > now_s + tolerance {
            r.uses_at = now_s;
            clamped = true;
        }
        out.clamped += usize::from(clamped);
    }
    let present: FxHashSet<_> = images.iter().map(|i| i.id).collect();
    let before = history.images.len();
    let gone = &mut history.gone;
    history.images.retain(|id, _| {
        let here = present.contains(id);
        if !here {
            gone.insert(*id);
        }
        here
    });
    out.dropped = before - history.images.len();
    if let (Some(end), GapPolicy::AssumeUsed) = (gap, gap_policy) {
        for r in history.images.values_mut() {
            if end > r.last_used {
                r.used(end, Source::Gap);
                out.gap_used += 1;
            }
        }
    }
    let adopt = history.adopt;
    for image in images {
        history.images.entry(image.id).or_insert_with(|| {
            if adopt {
                out.adopted += 1;
                adopted(image, now)
            } else {
                out.new += 1;
                Record::new(now_s, Source::Listing)
            }
        });
    }
    history.adopt = false;
    for c in containers {
        if let Some(r) = history.images.get_mut(&c.image_id) {
            r.used(now_s, Source::Container);
        }
    }
    history.dirty |= out != Reconciled::default() || !containers.is_empty();
    out
}

/// First seen at `Created` when that is a real time, else now; last used now.
fn adopted(image: &Image, now: DateTime<Utc>) -> Record {
    let (created, now_s) = (image.created.timestamp(), now.timestamp());
    if !is_real_time(image.created, now) {
        return Record {
            last_used_by: Source::Adopted,
            ..Record::new(now_s, Source::Listing)
        };
    }
    Record {
        first_seen: created.min(now_s),
        last_used: now_s,
        first_seen_by: Source::Created,
        last_used_by: Source::Adopted,
        uses: 0.0,
        uses_at: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::fake::{container, fake_id, image};

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().expect("test time")
    }

    const NOW: &str = "2026-06-01T12:00:00Z";

    fn images() -> Vec<Image> {
        vec![
            image("old").created(t("2026-01-01T00:00:00Z")).build(),
            image("epoch").created(t("1970-01-01T00:00:00Z")).build(),
            image("future").created(t("2030-01-01T00:00:00Z")).build(),
        ]
    }

    #[test]
    fn the_first_run_adopts_created_and_uses_now() {
        let mut h = History::first_run();
        let now = t(NOW);
        let r = reconcile(
            &mut h,
            &images(),
            &[],
            "E1",
            now,
            None,
            GapPolicy::AssumeUsed,
        );
        assert_eq!(r.adopted, 3);
        let old = h.images[&fake_id("old")];
        assert_eq!(old.first_seen, t("2026-01-01T00:00:00Z").timestamp());
        assert_eq!(old.first_seen_by, Source::Created);
        assert_eq!(
            (old.last_used, old.last_used_by),
            (now.timestamp(), Source::Adopted)
        );
        for unreal in ["epoch", "future"] {
            let rec = h.images[&fake_id(unreal)];
            assert_eq!(
                rec.first_seen,
                now.timestamp(),
                "{unreal}: Created is no time"
            );
            assert_eq!(rec.first_seen_by, Source::Listing);
        }
        assert!(!h.adopt && h.dirty);
        assert_eq!(h.engine_id, "E1");
    }

    #[test]
    fn later_runs_see_new_images_now_never_at_created() {
        let mut h = History::start_over();
        let now = t(NOW);
        let r = reconcile(
            &mut h,
            &images(),
            &[],
            "E1",
            now,
            None,
            GapPolicy::AssumeUsed,
        );
        assert_eq!((r.adopted, r.new), (0, 3));
        assert!(
            h.images
                .values()
                .all(|r| r.first_seen == now.timestamp() && r.first_seen_by == Source::Listing)
        );
    }

    #[test]
    fn containers_mark_use_and_gone_images_are_dropped() {
        let mut h = History::start_over();
        let then = t("2026-05-01T00:00:00Z");
        reconcile(
            &mut h,
            &images(),
            &[],
            "E1",
            then,
            None,
            GapPolicy::AssumeUsed,
        );
        h.dirty = false;
        let now = t(NOW);
        let left = &images()[..2];
        let used = [container("c", "old", "exited")];
        let r = reconcile(&mut h, left, &used, "E1", now, None, GapPolicy::AssumeUsed);
        assert_eq!(r.dropped, 1);
        assert!(h.dirty);
        let old = h.images[&fake_id("old")];
        assert_eq!(
            (old.last_used, old.last_used_by),
            (now.timestamp(), Source::Container)
        );
        assert_eq!(old.first_seen, then.timestamp());
        assert_eq!(h.images[&fake_id("epoch")].last_used, then.timestamp());
    }

    #[test]
    fn a_gap_raises_known_images_unless_ignored() {
        for (policy, raised) in [(GapPolicy::AssumeUsed, true), (GapPolicy::Ignore, false)] {
            let mut h = History::start_over();
            let then = t("2026-05-01T00:00:00Z");
            reconcile(&mut h, &images(), &[], "E1", then, None, policy);
            let end = t("2026-05-20T00:00:00Z");
            let r = reconcile(&mut h, &images(), &[], "E1", t(NOW), Some(end), policy);
            assert_eq!(r.gap_used, if raised { 3 } else { 0 }, "{policy:?}");
            let rec = h.images[&fake_id("old")];
            if raised {
                assert_eq!(
                    (rec.last_used, rec.last_used_by),
                    (end.timestamp(), Source::Gap)
                );
            } else {
                assert_eq!(rec.last_used, then.timestamp());
            }
        }
    }

    #[test]
    fn another_engine_id_is_a_gap_ending_now() {
        let mut h = History::start_over();
        reconcile(
            &mut h,
            &images(),
            &[],
            "E1",
            t("2026-05-01T00:00:00Z"),
            None,
            GapPolicy::AssumeUsed,
        );
        let now = t(NOW);
        let r = reconcile(
            &mut h,
            &images(),
            &[],
            "E2",
            now,
            None,
            GapPolicy::AssumeUsed,
        );
        assert!(r.engine_changed);
        assert_eq!(h.engine_id, "E2");
        assert!(h.images.values().all(|r| r.last_used == now.timestamp()));
    }

    proptest::proptest! {
        /// With `assume_used`, every known image is used at least at the gap's end and
        /// nothing else changes; with `ignore`, the gap changes nothing; new images are
        /// first seen now either way.
        #[test]
        fn the_gap_policy_decides_only_last_used(
            uses in proptest::collection::vec(0i64..1_000_000, 1..30),
            gap_back in 0i64..1_000_000,
            new in 0usize..5,
        ) {
            let now = t(NOW);
            let images: Vec<Image> = (0..uses.len() + new)
                .map(|k| image(&format!("i{k}")).created(t("2026-01-01T00:00:00Z")).build())
                .collect();
            let mut before = History::start_over();
            for (k, u) in uses.iter().enumerate() {
                before.used(fake_id(&format!("i{k}")), now.timestamp() - 2_000_000 + u, Source::Event);
            }
            let gap_end = now - chrono::Duration::seconds(gap_back);
            for policy in [GapPolicy::AssumeUsed, GapPolicy::Ignore] {
                let mut h = before.clone();
                reconcile(&mut h, &images, &[], "", now, Some(gap_end), policy);
                for (k, im) in images.iter().enumerate() {
                    let r = h.images[&im.id];
                    match before.images.get(&im.id) {
                        None => proptest::prop_assert_eq!(r, Record::new(now.timestamp(), Source::Listing)),
                        Some(old) => {
                            proptest::prop_assert_eq!(r.first_seen, old.first_seen, "{}", k);
                            let want = match policy {
                                GapPolicy::AssumeUsed => old.last_used.max(gap_end.timestamp()),
                                GapPolicy::Ignore => old.last_used,
                            };
                            proptest::prop_assert_eq!(r.last_used, want);
                        }
                    }
                }
            }
        }
    }
}
