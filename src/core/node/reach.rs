//! Reaching across a partition: a node keeps talking to the members it
//! holds down, so the moment a cut is lifted one of its datagrams crosses
//! and autoheal starts (see `heal`).
//!
//! While a node holds any member down (not departed: tombstoned records are
//! skipped) it wakes every probe period, jittered by +/-50%, and with
//! probability `REACHES_PER_PERIOD / side size` sends its sync summary to
//! one such member picked at random. So a whole side sends about
//! `REACHES_PER_PERIOD` summaries per probe period across the cut, however
//! large it is, and one node sends at most one summary (about 110 bytes
//! sealed) per probe period: a small side pays that bound, a large side a
//! fraction of it. The summary says the receiver is held down, so the
//! first one to cross is evidence for both ends. The reach stops when no
//! member is held down: it costs an idle, healthy cluster nothing.
//! Autoclean ends it for members that never come back.
//!
//! The same wake tells the members this node suspects that they are
//! suspected (see `suspicion`), and finishes what a heal started: a losing node whose merge
//! with the winner has not completed asks the winner again, and the
//! renewals of its former side-mates that did not arrive within
//! `FORMER_GRACE` are reported as the downs they are.

use std::time::Duration;

use rand::RngExt;

use super::io::Wake;
use super::Node;
use crate::core::event::Event;
use crate::core::identity::NodeId;

/// Summaries a whole side sends per probe period, in expectation, to the
/// members it holds down.
const REACHES_PER_PERIOD: f64 = 3.0;

/// How long a losing node waits for a former side-mate's renewal before
/// reporting it down.
pub(super) const FORMER_GRACE: Duration = Duration::from_secs(10);

impl Node {
    /// Whether the reach has anything to do.
    fn reach_wanted(&self) -> bool {
        self.config.autoheal
            && !self.left
            && (!self.down.is_empty()
                || self.heal.merging.is_some()
                || !self.heal.former.is_empty()
                || self.io.suspicions.any())
    }

    /// Arms the reach wake while a member is held down (or a heal is
    /// being finished).
    pub(super) fn schedule_reach(&mut self) {
        if self.reach_scheduled || !self.reach_wanted() {
            return;
        }
        self.reach_scheduled = true;
        let period = self.config.swim.probe_period;
        let delay = period.mul_f64(self.sync.rng.random_range(0.5..1.5));
        self.io.timers.push(self.io.now + delay, Wake::Reach);
    }

    /// One reach wake: see the module docs.
    pub(super) fn reach_tick(&mut self) {
        self.reach_scheduled = false;
        if !self.reach_wanted() {
            return;
        }
        if let Some(m) = self.heal.merging.clone() {
            // The winner's records have not arrived yet: ask again.
            self.open_sync(m.winner.addr(), m.winner.name().key());
        }
        self.report_missing_former();
        let (now, every) = (self.io.now, self.io.tell_every);
        self.io.suspicions.tell_all(now, every);
        if !self.down.is_empty() {
            let side = (self.swim.num_members() + 1) as f64;
            let p = (REACHES_PER_PERIOD / side).min(1.0);
            if self.sync.rng.random_bool(p) {
                if let Some(target) = self.pick_held_down() {
                    self.nudge(&target);
                }
            }
        }
        self.schedule_reach();
    }

    /// A member held down at its current record, not departed, at random.
    fn pick_held_down(&mut self) -> Option<NodeId> {
        let count = self.held_down_records().count();
        if count == 0 {
            return None;
        }
        let i = self.sync.rng.random_range(0..count);
        self.held_down_records().nth(i).cloned()
    }

    /// The down records no tombstone covers.
    pub(super) fn held_down_records(&self) -> impl Iterator<Item = &NodeId> {
        self.records()
            .filter(|m| m.state() == foca::State::Down && !self.tombstones.covers(m.id()))
            .map(|m| m.id())
    }

    /// Former side-mates whose renewal did not arrive in time: reported
    /// down, unless this node's view has them active after all.
    fn report_missing_former(&mut self) {
        if self.heal.former.is_empty() || self.io.now < self.heal.former_until {
            return;
        }
        let former = std::mem::take(&mut self.heal.former);
        let active: std::collections::BTreeSet<_> =
            self.swim.iter_members().map(|m| m.id().key()).collect();
        for (key, old) in former {
            if !active.contains(&key) {
                self.io.events.push_back(Event::MemberDown(old));
            }
        }
    }
}
