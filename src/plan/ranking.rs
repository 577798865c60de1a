//! The orders `lfu` and `size` (`order:` of a policy), for `max_total_size` and
//! `when: disk_pressure` alike, and the note a reason carries of what put an image first
//! ([`Ranked`]). `lru` and `oldest` are ordered where they always were (`retention`,
//! `pressure`); this module gives the keys of the two others.
//!
//! - `lfu`: fewest recent uses first — the history's use count decayed to `now`
//!   (`history.half_life`); ties (an equal count, e.g. never used) by last use, least recent
//!   first, then ID. A parent counts its own uses only.
//! - `size`: by idle days (whole days since the last use, as `lru` reads it: last use, else
//!   first seen, else `Created`), the most idle first; within a day, the largest own bytes
//!   first; then least recently used, then ID.

use std::cmp::Ordering;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::graph::Graph;
use super::seen::Seen;
use crate::config::{Config, Order};

const DAY: i64 = 24 * 3600;

/// A decayed use count as a reason shows it (compared by bits: never NaN).
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RecentUses(pub f32);

impl PartialEq for RecentUses {
    fn eq(&self, other: &Self) -> bool {
        self.0.to_bits() == other.0.to_bits()
    }
}

impl Eq for RecentUses {}

/// What put an evicted image where it was in its order (absent for `lru` and `oldest`,
/// whose reasons say it already).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "order", rename_all = "snake_case")]
pub enum Ranked {
    /// `order: lfu`: its use count decayed to the plan's time, and the half-life.
    Lfu {
        recent_uses: RecentUses,
        half_life_secs: u64,
    },
    /// `order: size`: whole days since its last use, and its own bytes.
    Size { idle_days: u64, own_bytes: u64 },
}

impl fmt::Display for Ranked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ranked::Lfu {
                recent_uses,
                half_life_secs,
            } => write!(
                f,
                "order lfu: {:.1} recent uses (half-life {}), fewest first",
                recent_uses.0,
                crate::units::fmt_duration(*half_life_secs)
            ),
            Ranked::Size {
                idle_days,
                own_bytes,
            } => write!(
                f,
                "order size: idle {idle_days} day{}, {}, largest first among the most idle",
                if *idle_days == 1 { "" } else { "s" },
                crate::units::fmt_bytes(*own_bytes)
            ),
        }
    }
}

/// The per-image keys of the two orders.
pub(super) struct Ranking<'g, 'a> {
    pub graph: &'g Graph<'a>,
    pub seen: &'g Seen<'g>,
    pub now: i64,
    pub half_life: i64,
}

impl<'g, 'a> Ranking<'g, 'a> {
    pub fn new(
        graph: &'g Graph<'a>,
        seen: &'g Seen<'g>,
        config: &Config,
        now: DateTime<Utc>,
    ) -> Self {
        Self {
            graph,
            seen,
            now: now.timestamp(),
            half_life: i64::try_from(config.history.half_life.as_secs()).unwrap_or(i64::MAX),
        }
    }

    /// The image's use count decayed to now (0 without a record).
    pub fn recent_uses(&self, i: usize) -> f64 {
        self.seen
            .record(i)
            .map_or(0.0, |r| r.use_count().count_at(self.now, self.half_life))
    }

    /// Whole days since the last use (as `lru` reads it); 0 for a use in the future.
    pub fn idle_days(&self, i: usize) -> i64 {
        (self.now - self.lru(i).0).max(0) / DAY
    }

    fn lru(&self, i: usize) -> (i64, i64, u128) {
        self.seen.lru_key(i, self.graph.created[i])
    }

    /// Compare two images in the order `order` evicts them (`Less`: `a` goes first). `lru`
    /// and `oldest` compare by last use here (their own sorts stay where they were).
    pub fn cmp(&self, order: Order, a: usize, b: usize) -> Ordering {
        let by_lru = || {
            (self.lru(a).cmp(&self.lru(b)))
                .then_with(|| self.graph.images[a].id.cmp(&self.graph.images[b].id))
        };
        match order {
            Order::Lru | Order::Oldest => by_lru(),
            Order::Lfu => (self.recent_uses(a).total_cmp(&self.recent_uses(b))).then_with(by_lru),
            Order::Size => (self.idle_days(b).cmp(&self.idle_days(a)))
                .then_with(|| self.graph.own_bytes[b].cmp(&self.graph.own_bytes[a]))
                .then_with(by_lru),
        }
    }

    /// Sort `items` in the order `order` evicts them, the first evicted first.
    pub fn sort(&self, order: Order, items: &mut [usize]) {
        match order {
            // Keys computed once: a decayed count is an `exp2`.
            Order::Lfu => {
                let mut keyed: Vec<(f64, (i64, i64, u128), usize)> = (items.iter())
                    .map(|&i| (self.recent_uses(i), self.lru(i), i))
                    .collect();
                keyed.sort_unstable_by(|a, b| {
                    (a.0.total_cmp(&b.0))
                        .then_with(|| a.1.cmp(&b.1))
                        .then_with(|| self.graph.images[a.2].id.cmp(&self.graph.images[b.2].id))
                });
                for (slot, (_, _, i)) in items.iter_mut().zip(keyed) {
                    *slot = i;
                }
            }
            _ => items.sort_unstable_by(|&a, &b| self.cmp(order, a, b)),
        }
    }

    /// The note an image evicted under `order` carries (none for `lru` and `oldest`).
    pub fn note(&self, order: Order, i: usize) -> Option<Ranked> {
        match order {
            Order::Lru | Order::Oldest => None,
            #[allow(clippy::cast_possible_truncation)] // a count far below f32::MAX
            Order::Lfu => Some(Ranked::Lfu {
                recent_uses: RecentUses(self.recent_uses(i) as f32),
                half_life_secs: self.half_life.unsigned_abs(),
            }),
            Order::Size => Some(Ranked::Size {
                idle_days: self.idle_days(i).unsigned_abs(),
                own_bytes: self.graph.own_bytes[i],
            }),
        }
    }
}

#[cfg(test)]
#[path = "ranking_tests.rs"]
mod tests;
