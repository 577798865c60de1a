//! The history of one pass, end to end: opened (or borrowed from the agent), reconciled
//! with the listing just made, the deleted images forgotten, and written back — by this
//! module only, for `prune`, `plan` and the agent alike.
//!
//! `prune` opens the file at the start of the pass and writes it at the end (a dry run
//! never writes, nor moves a bad file aside). The agent's history lives as long as the
//! agent (its events task keeps it current, its writer writes it): a pass borrows it.

use std::sync::Mutex;

use chrono::{DateTime, Utc};

use crate::config::Config;
use crate::engine::EngineInfo;
use crate::execute::{DeletionResult, Outcome};
use crate::history::reconcile::reconcile;
use crate::history::store::{self, Opener};
use crate::history::worker::lock;
use crate::history::{History, Record};
use crate::inventory::Inventory;
use crate::plan::{Plan, Usage};

/// Where a pass's history comes from.
#[derive(Debug, Clone, Copy, Default)]
pub enum HistoryUse<'a> {
    /// None: images are aged by `Created` (`history.enabled: false`, tests).
    #[default]
    Off,
    /// The file `history:` names, opened for this pass and written at its end (`prune`,
    /// `plan`, `apply`; never written by a dry run).
    File,
    /// The agent's live history.
    Shared(&'a Mutex<History>),
}

/// The history a pass holds while it runs.
pub(super) enum Session<'a> {
    Off,
    Owned(Mutex<History>, Opener),
    Shared(&'a Mutex<History>),
}

impl<'a> Session<'a> {
    /// Open the history `from` says, for a pass that changes the engine or not (`dry_run`).
    /// A history file that cannot be read stops the pass (it is never written over).
    pub fn open(
        from: HistoryUse<'a>,
        config: &Config,
        dry_run: bool,
    ) -> Result<Self, store::Unreadable> {
        Ok(match from {
            HistoryUse::Off => Session::Off,
            HistoryUse::Shared(h) => Session::Shared(h),
            HistoryUse::File => {
                let opener = if dry_run {
                    Opener::DryRun
                } else {
                    Opener::Prune
                };
                match store::open(&config.history, opener)? {
                    Some(h) => Session::Owned(Mutex::new(h), opener),
                    None => Session::Off,
                }
            }
        })
    }

    fn history(&self) -> Option<&Mutex<History>> {
        match self {
            Session::Off => None,
            Session::Owned(h, _) => Some(h),
            Session::Shared(h) => Some(h),
        }
    }

    /// Bring the history in line with what the engine holds now; the planner's records,
    /// one per image of the inventory (empty without a history).
    pub fn reconcile(
        &self,
        config: &Config,
        info: &EngineInfo,
        inventory: &Inventory,
        now: DateTime<Utc>,
    ) -> Vec<Option<Record>> {
        let Some(h) = self.history() else {
            return Vec::new();
        };
        let mut h = lock(h);
        let pending = h.pending_gap.take();
        let images = &inventory.images;
        let r = reconcile(
            &mut h,
            images,
            &inventory.containers,
            &info.id,
            now,
            pending,
            config.history.gap_policy,
        );
        if r.clamped > 0 {
            tracing::warn!(
                records = r.clamped,
                "history times in the future of the engine's clock were set to now"
            );
        }
        if r.engine_changed {
            tracing::warn!(engine = %info.id, "the history belongs to another engine: counted as a gap");
        }
        tracing::debug!(
            adopted = r.adopted,
            new = r.new,
            dropped = r.dropped,
            gap_used = r.gap_used,
            "history reconciled"
        );
        Usage::records_of(images, &h.images)
    }

    /// Forget the images the pass deleted (the agent's events task would too, a moment
    /// later).
    pub fn forget(&self, inventory: &Inventory, plan: &Plan, results: &[DeletionResult]) {
        let Some(h) = self.history() else {
            return;
        };
        let mut h = lock(h);
        for r in results {
            if matches!(r.outcome, Outcome::Deleted | Outcome::AlreadyGone) {
                h.removed(inventory.images[plan.decisions[r.decision].image].id);
            }
        }
    }

    /// Write a history this pass opened, when it changed (never for a dry run). A failure
    /// is a warning: the pass did its work.
    pub fn close(self, config: &Config) {
        if let Session::Owned(h, opener) = self {
            let mut h = h
                .into_inner()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Err(e) = store::save(&config.history, &mut h, opener) {
                tracing::warn!(error = %e, "history not written");
            }
        }
    }
}
