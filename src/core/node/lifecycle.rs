//! Leave, force-leave and autoclean: how members depart and are forgotten.
//!
//! Departures are tombstones ([`crate::core::tombstone`]). The departing node
//! (for `leave`) or the operator's node (for `force-leave`) sends a `Notice`
//! straight to every active member, so the others show the change at once;
//! full-state sync carries tombstones to anyone who missed it. A record a
//! tombstone covers is buried: put back down at once, hidden from `status`,
//! and its node told it was removed.

use std::time::Duration;

use super::io::Wake;
use super::{CommandError, Node};
use crate::core::autoclean;
use crate::core::event::Event;
use crate::core::identity::NodeId;
use crate::core::name::NodeName;
use crate::core::sync::SyncMsg;
use crate::core::time::Time;
use crate::core::tombstone::{Departure, Tombstone};

/// At most one removal notice per removed node per this interval.
const NOTICE_INTERVAL: Duration = Duration::from_secs(1);

impl Node {
    pub(super) fn leave(&mut self) -> Result<(), CommandError> {
        let me = self.swim.identity().clone();
        let t = Tombstone::of(&me, Departure::Left);
        self.tombstones.insert(t.clone(), self.io.now);
        self.notify_all(&t, None);
        self.swim
            .leave_cluster(&mut self.io)
            .map_err(|e| CommandError::Protocol(e.to_string()))?;
        self.stop();
        Ok(())
    }

    pub(super) fn force_leave(&mut self, name: NodeName) -> Result<(), CommandError> {
        if &name == self.swim.identity().name() {
            return Err(CommandError::ForceLeaveSelf(name));
        }
        let id = self
            .record_of(&name)
            .map(|m| m.id().clone())
            .ok_or(CommandError::UnknownNode(name))?;
        let t = Tombstone::of(&id, Departure::ForceLeft);
        // The removed node hears it too, if it is alive.
        self.notify_all(&t, Some(&id));
        let now = self.io.now;
        self.learn_tombstone(t, now);
        Ok(())
    }

    fn record_of(&self, name: &NodeName) -> Option<&foca::Member<NodeId>> {
        self.swim
            .iter_membership_state()
            .find(|m| m.id().name() == name)
    }

    /// Sends `t` to every active member, and to `also`.
    fn notify_all(&mut self, t: &Tombstone, also: Option<&NodeId>) {
        let msg = SyncMsg::Notice {
            from: self.swim.identity().clone(),
            tombstone: t.clone(),
        };
        let mut to: Vec<_> = self.swim.iter_members().map(|m| m.id().addr()).collect();
        to.extend(also.map(|id| id.addr()));
        to.sort();
        to.dedup();
        for addr in to {
            self.send_sync(addr, &msg);
        }
    }

    /// Takes in a tombstone learned at `since`: buries the record it covers
    /// and reports the departure, or, if it is this node's own, stops.
    pub(super) fn learn_tombstone(&mut self, t: Tombstone, since: Time) {
        let me = self.swim.identity().clone();
        if t.covers(&me) {
            if !self.left {
                self.tombstones.insert(t.clone(), since);
                self.stop();
                self.io.events.push_back(match t.kind {
                    Departure::Left => Event::MemberLeft(me),
                    Departure::ForceLeft => Event::NodeForceLeft(me),
                });
            }
            return;
        }
        if t.name == *me.name() {
            return; // about an older generation of this node
        }
        let kind = t.kind;
        if !self.tombstones.insert(t.clone(), since) {
            return;
        }
        let Some(record) = self.record_of(&t.name).cloned() else {
            return;
        };
        if !t.covers(record.id()) {
            return;
        }
        self.down.remove(t.name.key());
        if record.state() != foca::State::Down {
            self.put_down(record.id());
        }
        let id = record.id().clone();
        self.io.events.push_back(match kind {
            Departure::Left => Event::MemberLeft(id),
            Departure::ForceLeft => Event::NodeForceLeft(id),
        });
    }

    /// A record a tombstone covers came up: put it back down and tell its
    /// node (at most once a second) that it was removed.
    pub(super) fn bury(&mut self, id: &NodeId) {
        self.put_down(id);
        self.tell_removed(id);
    }

    /// Sends the tombstone that covers `id` to it, rate-limited.
    pub(super) fn tell_removed(&mut self, id: &NodeId) {
        let Some(t) = self.tombstones.get(id.name()).cloned() else {
            return;
        };
        let key = id.key();
        let now = self.io.now;
        if self
            .heal
            .noticed
            .get(&key)
            .is_some_and(|at| now - *at < NOTICE_INTERVAL)
        {
            return;
        }
        self.heal.noticed.insert(key, now);
        let msg = SyncMsg::Notice {
            from: self.swim.identity().clone(),
            tombstone: t,
        };
        self.send_sync(id.addr(), &msg);
    }

    /// Applies one record through foca's precedence rules and gossips it if
    /// it changed anything (a refusal is counted, state unchanged).
    pub(super) fn apply_one(&mut self, member: foca::Member<NodeId>) {
        self.io
            .mentions
            .note(member.id(), member.incarnation(), member.state());
        if self
            .swim
            .apply_many(std::iter::once(member), true, &mut self.io)
            .is_err()
        {
            self.io.stats.timer_errors += 1;
        }
    }

    /// Declares `id` down in foca (and so to the cluster, by gossip).
    pub(super) fn put_down(&mut self, id: &NodeId) {
        let down = foca::Member::new(id.clone(), 0, foca::State::Down);
        self.apply_one(down);
    }

    /// foca renewed our identity after our own side declared us down.
    pub(super) fn renewed_by_foca(&mut self, id: NodeId) {
        self.io.events.push_back(Event::SelfRenewed(id.clone()));
        self.io.events.push_back(Event::Rejoined {
            id,
            lost_partition: false,
        });
    }

    /// Arms the autoclean sweep.
    pub(super) fn schedule_sweep(&mut self) {
        let Some(after) = self.config.autoclean else {
            return;
        };
        if self.clean_scheduled || self.left {
            return;
        }
        self.clean_scheduled = true;
        let at = self.io.now + autoclean::sweep_interval(after);
        self.io.timers.push(at, Wake::Clean);
    }

    /// The autoclean sweep: forgets members down longer than `autoclean`
    /// and tombstones older than it, and keeps the down clock in step with
    /// foca's records.
    pub(super) fn sweep(&mut self) {
        let Some(after) = self.config.autoclean else {
            return;
        };
        let now = self.io.now;
        // Earlier identities of this node: not members, forget them.
        let me = self.swim.identity().clone();
        let own: Vec<NodeId> = self
            .swim
            .iter_membership_state()
            .filter(|m| m.id().name() == me.name() && m.id() != &me)
            .map(|m| m.id().clone())
            .collect();
        for id in own {
            self.forget(id);
        }
        // Down records foca holds, by key (some arrive without a MemberDown).
        let downs: std::collections::BTreeMap<_, _> = self
            .records()
            .filter(|m| m.state() == foca::State::Down)
            .map(|m| (m.id().key(), m.id().clone()))
            .collect();
        self.down
            .retain(|k, d| downs.get(&k).is_some_and(|id| id.version() == d.version));
        for (key, id) in &downs {
            if !self.tombstones.covers(id) && self.down.get(*key).is_none() {
                self.down.note(*key, id.version(), now);
            }
        }
        if let Some(cutoff) = now
            .as_duration()
            .checked_sub(after)
            .map(Time::from_duration)
        {
            for key in self.down.due(cutoff) {
                self.down.remove(key);
                if let Some(id) = downs.get(&key) {
                    self.forget(id.clone());
                    self.io
                        .events
                        .push_back(Event::NodeCleaned(id.name().clone()));
                }
            }
            for t in self.tombstones.expire(cutoff) {
                if let Some(id) = downs.get(&t.name.key()).filter(|id| t.covers(id)) {
                    self.forget(id.clone());
                }
                self.io.events.push_back(Event::NodeCleaned(t.name));
            }
        }
        self.heal.prune(now);
        self.schedule_sweep();
    }

    /// Removes a down record from foca.
    pub(super) fn forget(&mut self, id: NodeId) {
        if self
            .swim
            .handle_timer(foca::Timer::RemoveDown(id), &mut self.io)
            .is_err()
        {
            self.io.stats.timer_errors += 1;
        }
    }
}
