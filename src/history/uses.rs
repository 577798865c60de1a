//! How often an image is used: an exponentially decayed count of its uses ([`Uses`]), kept
//! as one `f32` and the time it was last brought up to date (Unix seconds on the engine's
//! clock, like the rest of the history). A use adds 1; every `half_life` the count halves.
//! An image used five times a week ago, with the default half-life of 7 days, counts 2.5 now.
//!
//! What counts as a use (see `events::counts`): a container created from the image, and the
//! image tagged, loaded, imported, pulled or created. A container start only moves
//! `last_used` (a `docker run` is one use, not two; a restart is no new use). The classic
//! builder creates a container from the image each step runs on, so the base of a classic
//! build counts a use; BuildKit emits no event for its base image, so a BuildKit build counts
//! no use of its base (only the `tag` of the image it builds).

use serde::{Deserialize, Serialize};

/// Default half-life, in seconds: `history.half_life`'s default (7 days).
#[allow(clippy::cast_possible_wrap)] // 7 days
pub const DEFAULT_HALF_LIFE_SECS: i64 = crate::config::DEFAULT_HALF_LIFE.as_secs() as i64;

/// A decayed count of uses, as of [`Uses::at`] (Unix seconds). 12 bytes of data.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct Uses {
    /// The count as of `at`.
    pub count: f32,
    /// When the count was last brought up to date; 0 when the image was never used.
    pub at: i64,
}

// Compared by bits: a count is never NaN (it is built from 1s, sums and factors in (0, 1]).
impl PartialEq for Uses {
    fn eq(&self, other: &Self) -> bool {
        self.count.to_bits() == other.count.to_bits() && self.at == other.at
    }
}

impl Eq for Uses {}

/// The factor a count decays by in `secs` (1 for no time or negative time: a clock that
/// stepped back never makes a count grow).
#[must_use]
pub fn decay(secs: i64, half_life: i64) -> f64 {
    let half_life = if half_life > 0 {
        half_life
    } else {
        DEFAULT_HALF_LIFE_SECS
    };
    if secs <= 0 {
        return 1.0;
    }
    #[allow(clippy::cast_precision_loss)] // seconds: far below 2^52
    let halves = secs as f64 / half_life as f64;
    (-halves).exp2()
}

impl Uses {
    /// Never used.
    pub const NONE: Uses = Uses { count: 0.0, at: 0 };

    /// The count at `now` (no more than the count as of `at` when `now` is earlier).
    #[must_use]
    pub fn count_at(self, now: i64, half_life: i64) -> f64 {
        if self.count <= 0.0 {
            return 0.0;
        }
        f64::from(self.count) * decay(now - self.at, half_life)
    }

    /// Count one use at `at`: a use after the last one decays the count to `at` and adds 1;
    /// an earlier one (an event seen late) adds what it is worth at the last one.
    pub fn add(&mut self, at: i64, half_life: i64) {
        if at >= self.at {
            let now = self.count_at(at, half_life) + 1.0;
            *self = Uses {
                count: to_f32(now),
                at,
            };
        } else {
            let worth = decay(self.at - at, half_life);
            self.count = to_f32(f64::from(self.count) + worth);
        }
    }

    /// Take in another writer's count of the same image: the one brought up to date later
    /// (the agent is the only writer that counts; `prune` carries the file's counts), the
    /// larger on a tie. Never a sum: two writers that saw the same events would double them.
    pub fn merge(&mut self, theirs: Uses) {
        if theirs.at > self.at || (theirs.at == self.at && theirs.count > self.count) {
            *self = theirs;
        }
    }
}

#[allow(clippy::cast_possible_truncation)] // counts stay far below f32::MAX
fn to_f32(v: f64) -> f32 {
    v.clamp(0.0, f64::from(f32::MAX)) as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 24 * 3600;
    const H: i64 = 7 * DAY;

    #[test]
    fn a_count_halves_every_half_life() {
        let mut u = Uses::NONE;
        assert!(u.count_at(1_000, H).abs() < f64::EPSILON);
        u.add(1_000, H);
        assert!((u.count_at(1_000, H) - 1.0).abs() < 1e-6);
        assert!((u.count_at(1_000 + H, H) - 0.5).abs() < 1e-6);
        assert!((u.count_at(1_000 + 2 * H, H) - 0.25).abs() < 1e-6);
        // A clock that went back never makes a count grow.
        assert!((u.count_at(0, H) - 1.0).abs() < 1e-6);
    }

    #[test]
    fn five_uses_a_week_ago_count_two_and_a_half() {
        let mut u = Uses::NONE;
        for k in 0..5 {
            u.add(10_000 + k, H);
        }
        assert_eq!(u.at, 10_004);
        assert!((u.count_at(10_004 + H, H) - 2.5).abs() < 1e-3);
        // Decay at each use or only at the end: the same count.
        let mut spread = Uses::NONE;
        for k in 0..5 {
            spread.add(10_000 + k * DAY, H);
        }
        let want: f64 = (0..5).map(|k| decay((4 - k) * DAY, H)).sum();
        assert!((spread.count_at(10_000 + 4 * DAY, H) - want).abs() < 1e-5);
    }

    #[test]
    fn a_late_event_adds_what_it_is_worth_at_the_last_use() {
        let mut u = Uses::NONE;
        u.add(10_000 + H, H);
        u.add(10_000, H);
        assert_eq!(u.at, 10_000 + H, "the time stays at the latest use");
        assert!((u.count_at(10_000 + H, H) - 1.5).abs() < 1e-6);
    }

    #[test]
    fn a_merge_takes_the_later_count_never_a_sum() {
        let mut mine = Uses {
            count: 3.0,
            at: 100,
        };
        mine.merge(Uses { count: 1.0, at: 50 });
        assert_eq!(
            mine,
            Uses {
                count: 3.0,
                at: 100
            },
            "older count ignored"
        );
        mine.merge(Uses {
            count: 4.0,
            at: 100,
        });
        assert_eq!(
            mine,
            Uses {
                count: 4.0,
                at: 100
            },
            "larger on a tie"
        );
        mine.merge(Uses {
            count: 2.0,
            at: 200,
        });
        assert_eq!(
            mine,
            Uses {
                count: 2.0,
                at: 200
            },
            "the later one"
        );
        mine.merge(Uses::NONE);
        assert_eq!(
            mine,
            Uses {
                count: 2.0,
                at: 200
            },
            "no count changes nothing"
        );
    }

    #[test]
    fn no_half_life_means_the_default() {
        assert!((decay(DEFAULT_HALF_LIFE_SECS, 0) - 0.5).abs() < 1e-12);
        assert!((decay(DAY, DAY) - 0.5).abs() < 1e-12);
        assert!((decay(-5, DAY) - 1.0).abs() < f64::EPSILON);
    }
}
