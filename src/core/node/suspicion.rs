//! Telling a suspect it is suspected, so it refutes in time.
//!
//! foca spreads a suspicion like any update: piggybacked on a bounded
//! number of messages, then never again. A suspicion raised during a
//! partition is spent on messages that never cross; when the cut is lifted
//! the suspect has no way to learn it is suspected, cannot refute, and is
//! declared down when the timer armed before the lift fires after it: a
//! live node flaps. So every suspicion a node holds is also told straight to
//! the suspect (a `Suspected` sync message beside whatever foca sends it,
//! and in answer to whatever it sends), at most once per probe period per
//! suspect, for as long as the suspicion runs; the suspect feeds it to foca as an update about itself and refutes
//! at once. This is Lifeguard's "buddy system" (foca piggybacks only from
//! its backlog, so it does not do it by itself).
//!
//! A node learns its suspicions from foca's own timers: every suspicion,
//! its own or one learned by gossip, arms foca's suspect-to-down timer,
//! which passes through the core's timer queue. The telling rides on the
//! datagrams exchanged with the suspect anyway, and adds at most one small
//! datagram per suspect per probe period.

use std::collections::BTreeMap;
use std::time::Duration;

use foca::{Incarnation, Timer};

use super::Node;
use crate::core::identity::NodeId;
use crate::core::name::NameKey;
use crate::core::sync::SyncMsg;
use crate::core::time::Time;

/// One suspicion this node holds.
struct Suspicion {
    id: NodeId,
    incarnation: Incarnation,
    /// When the suspect was last told.
    told: Option<Time>,
    /// Raised on evidence from the network (on the short timeout).
    evidence: bool,
}

/// The suspicions a node holds, from foca's suspect-to-down timers.
#[derive(Default)]
pub(super) struct Suspicions {
    held: BTreeMap<NameKey, Suspicion>,
    /// Suspects to tell now.
    pub due: Vec<(NodeId, Incarnation)>,
}

impl Suspicions {
    /// foca armed a timer: note a suspicion it starts.
    pub fn armed(&mut self, timer: &Timer<NodeId>) {
        if let Timer::ChangeSuspectToDown {
            member_id,
            incarnation,
            ..
        } = timer
        {
            self.held.insert(
                member_id.name().key(),
                Suspicion {
                    id: member_id.clone(),
                    incarnation: *incarnation,
                    told: None,
                    evidence: false,
                },
            );
        }
    }

    /// foca's timer fired: the suspicion ended (down, or refuted earlier).
    pub fn fired(&mut self, timer: &Timer<NodeId>) {
        if let Timer::ChangeSuspectToDown {
            member_id,
            incarnation,
            ..
        } = timer
        {
            self.ended(member_id, *incarnation);
        }
    }

    /// The suspicion of `id` at `incarnation` ended.
    pub fn ended(&mut self, id: &NodeId, incarnation: Incarnation) {
        let key = id.name().key();
        if self
            .held
            .get(&key)
            .is_some_and(|s| &s.id == id && s.incarnation == incarnation)
        {
            self.held.remove(&key);
        }
    }

    /// The network says `id` is unreachable: a suspicion on evidence starts,
    /// and the suspect is due to be told at once. Returns whether one was
    /// already running at that incarnation (nothing changes then).
    pub fn on_evidence(&mut self, id: &NodeId, incarnation: Incarnation) -> bool {
        let key = id.name().key();
        if self
            .held
            .get(&key)
            .is_some_and(|s| &s.id == id && s.incarnation == incarnation && s.evidence)
        {
            return true;
        }
        let fresh = Suspicion {
            id: id.clone(),
            incarnation,
            told: None,
            evidence: true,
        };
        self.held.insert(key, fresh);
        self.due.push((id.clone(), incarnation));
        false
    }

    /// A datagram goes to (or comes from) `to` at `now`: if `to` is
    /// suspected and was not told within `every`, it is due to be told.
    pub fn sending(&mut self, to: &NodeId, now: Time, every: Duration) {
        if self.held.is_empty() {
            return;
        }
        if let Some(s) = self.held.get_mut(&to.name().key()) {
            if &s.id == to {
                Self::tell(s, now, every, &mut self.due);
            }
        }
    }

    /// Every suspect not told within `every` is due to be told (the reach's
    /// wake: a quiet cluster sends a suspect nothing for many periods).
    pub fn tell_all(&mut self, now: Time, every: Duration) {
        for s in self.held.values_mut() {
            Self::tell(s, now, every, &mut self.due);
        }
    }

    fn tell(s: &mut Suspicion, now: Time, every: Duration, due: &mut Vec<(NodeId, Incarnation)>) {
        if s.told.is_none_or(|at| now - at >= every) {
            s.told = Some(now);
            due.push((s.id.clone(), s.incarnation));
        }
    }

    /// Whether this node suspects any member.
    pub fn any(&self) -> bool {
        !self.held.is_empty()
    }

    /// Forgets everything (a fresh SWIM instance).
    pub fn clear(&mut self) {
        self.held.clear();
        self.due.clear();
    }
}

impl Node {
    /// Tells the suspects that are due (after every input). The telling
    /// is a sync message: with sync off (plain foca) nobody is told.
    pub(super) fn tell_suspects(&mut self) {
        if self.io.suspicions.due.is_empty() {
            return;
        }
        if self.config.sync.is_none() {
            self.io.suspicions.due.clear();
            return;
        }
        let from = self.swim.identity().clone();
        for (you, incarnation) in std::mem::take(&mut self.io.suspicions.due) {
            let msg = SyncMsg::Suspected {
                from: from.clone(),
                you: you.clone(),
                incarnation,
            };
            self.send_sync(you.addr(), &msg);
        }
    }

    /// A member says it suspects this node at `incarnation`: refute, as
    /// foca does for a suspicion learned by gossip. About an earlier
    /// identity of this node, it is stale and ignored.
    ///
    /// The refutation is gossiped as foca does; the teller is also
    /// answered directly (an announce, whose header carries the new
    /// incarnation), so a suspicion on a short timeout ends in a round trip.
    pub(super) fn suspected(&mut self, teller: &NodeId, you: &NodeId, incarnation: Incarnation) {
        if you != self.swim.identity() || self.left {
            return;
        }
        let me = foca::Member::new(you.clone(), incarnation, foca::State::Suspect);
        self.apply_one(me);
        if self.swim.announce(teller.clone(), &mut self.io).is_err() {
            self.io.stats.timer_errors += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(i: u8) -> NodeId {
        let name = format!("rc{i}@127.0.0.1").parse().unwrap();
        NodeId::new(name, ([127, 0, 0, 1], 4370 + u16::from(i)).into(), 1)
    }

    fn suspect(who: &NodeId, incarnation: Incarnation) -> Timer<NodeId> {
        Timer::ChangeSuspectToDown {
            member_id: who.clone(),
            incarnation,
            token: 0,
        }
    }

    const PERIOD: Duration = Duration::from_secs(1);

    #[test]
    fn a_suspect_is_told_once_per_period_while_the_suspicion_runs() {
        let mut s = Suspicions::default();
        let (x, y) = (id(1), id(2));
        s.armed(&suspect(&x, 3));
        s.sending(&y, Time::ZERO, PERIOD);
        assert!(s.due.is_empty(), "y is not suspected");
        s.sending(&x, Time::ZERO, PERIOD);
        s.sending(&x, Time::from_duration(Duration::from_millis(500)), PERIOD);
        assert_eq!(s.due, vec![(x.clone(), 3)]);
        s.due.clear();
        s.sending(&x, Time::from_duration(PERIOD), PERIOD);
        assert_eq!(s.due, vec![(x.clone(), 3)]);
        s.due.clear();
        s.fired(&suspect(&x, 3));
        s.sending(&x, Time::from_duration(PERIOD * 5), PERIOD);
        assert!(s.due.is_empty(), "told after the suspicion ended");
    }

    #[test]
    fn a_stale_timer_does_not_end_a_newer_suspicion() {
        let mut s = Suspicions::default();
        let x = id(1);
        s.armed(&suspect(&x, 3));
        s.armed(&suspect(&x, 4));
        s.fired(&suspect(&x, 3));
        s.sending(&x, Time::ZERO, PERIOD);
        assert_eq!(s.due, vec![(x, 4)]);
    }

    #[test]
    fn other_timers_are_not_suspicions() {
        let mut s = Suspicions::default();
        let x = id(1);
        s.armed(&Timer::RemoveDown(x.clone()));
        s.sending(&x, Time::ZERO, PERIOD);
        assert!(s.due.is_empty());
    }

    #[test]
    fn every_suspect_is_told_on_the_wake_once_per_period() {
        let mut s = Suspicions::default();
        let name = |i: u16| format!("rc{i}@127.0.0.1").parse().unwrap();
        let ids: Vec<NodeId> = (1..4)
            .map(|i| NodeId::new(name(i), ([127, 0, 0, 1], 4370 + i).into(), 1))
            .collect();
        for id in &ids {
            s.armed(&Timer::ChangeSuspectToDown {
                member_id: id.clone(),
                incarnation: 0,
                token: 0,
            });
        }
        let every = Duration::from_secs(1);
        s.tell_all(Time::ZERO, every);
        assert_eq!(s.due.len(), 3);
        s.due.clear();
        s.tell_all(Time::from_duration(every / 2), every);
        assert!(s.due.is_empty());
        s.tell_all(Time::from_duration(every), every);
        assert_eq!(s.due.len(), 3);
    }
}
