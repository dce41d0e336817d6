//! The suspicions a node holds, and telling each suspect it is suspected.
//!
//! foca arms its suspect-to-down timer only when this node's own probe of a
//! member failed; the timer passes through the core's queue, and that is
//! how the node learns its suspicions. With Lifeguard on (see ALGORITHM.md,
//! "Lifeguard"):
//!
//! - the buddy system: every suspicion is told straight to the suspect (a
//!   `Suspected` sync message beside whatever foca sends it, in answer to
//!   whatever it sends, and on the reach's wake), at most once per probe
//!   period, until it refutes. foca spreads a suspicion only on a bounded
//!   number of piggybacked messages, which a partition or heavy loss can
//!   spend before the suspect hears of it;
//! - dynamic suspicion: the timer is held on a timeout that starts at six
//!   times the suspicion timeout and shrinks as claims of other nodes
//!   (`claims`) confirm the suspicion.
//!
//! A suspicion raised on network evidence (`evidence`) is always told: it
//! runs on a timeout too short to wait for gossip.

use std::collections::BTreeMap;
use std::time::Duration;

use foca::{Incarnation, Timer};

use super::claims::Claim;
use super::Node;
use crate::core::dynamic_suspicion::{suspicion_timeout, MAX_TIMEOUT_MULTIPLIER};
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
    /// Raised by our own failed probe, on Lifeguard's dynamic timeout.
    dynamic: Option<Dynamic>,
}

/// A suspicion on Lifeguard's dynamic timeout: foca's suspect-to-down
/// timer, held until `deadline`, which confirmations bring closer.
struct Dynamic {
    timer: Timer<NodeId>,
    start: Time,
    min: Duration,
    expected: u32,
    deadline: Time,
}

impl Dynamic {
    fn deadline_with(&self, confirmations: u32) -> Time {
        let max = self.min * MAX_TIMEOUT_MULTIPLIER;
        self.start + suspicion_timeout(self.min, max, self.expected, confirmations)
    }
}

/// The authors of the claims heard about one suspect, at its latest
/// incarnation claimed.
struct Heard {
    id: NodeId,
    incarnation: Incarnation,
    authors: Vec<NameKey>,
    at: Time,
}

/// At most this many authors are kept per suspect (far more than any
/// suspicion expects).
const AUTHORS_KEPT: usize = 16;

/// Claims older than this are forgotten once many suspects are remembered.
const HEARD_KEPT_FOR: Duration = Duration::from_secs(600);

/// The suspicions a node holds, from foca's suspect-to-down timers.
#[derive(Default)]
pub(super) struct Suspicions {
    held: BTreeMap<NameKey, Suspicion>,
    /// Claims heard from other nodes, by suspect (Lifeguard).
    heard: BTreeMap<NameKey, Heard>,
    /// Whether every suspicion is told to its suspect (Lifeguard's buddy
    /// system); otherwise only those raised on network evidence are.
    pub buddy: bool,
    /// Suspects to tell now.
    pub due: Vec<(NodeId, Incarnation)>,
}

impl Suspicions {
    /// No suspicions yet; `buddy`: tell every suspect (Lifeguard on).
    pub fn new(buddy: bool) -> Self {
        Self {
            buddy,
            ..Self::default()
        }
    }

    /// foca armed a timer: note a suspicion it starts (on the fixed
    /// timeout: Lifeguard off).
    pub fn armed(&mut self, timer: &Timer<NodeId>) {
        if let Some((id, incarnation)) = suspicion_of(timer) {
            self.held
                .insert(id.key(), Suspicion::new(id.clone(), incarnation));
        }
    }

    /// The suspicion of `id` at `incarnation`: the one held, or a fresh one
    /// in place of any other of the same name.
    fn entry(&mut self, id: &NodeId, incarnation: Incarnation) -> &mut Suspicion {
        let s = self
            .held
            .entry(id.key())
            .or_insert_with(|| Suspicion::new(id.clone(), incarnation));
        if &s.id != id || s.incarnation != incarnation {
            *s = Suspicion::new(id.clone(), incarnation);
        }
        s
    }

    /// foca armed its suspect-to-down `timer` (our own probe failed) with
    /// the fixed timeout `min`: hold it on the dynamic timeout instead,
    /// counting the claims already heard from `expected`. Returns when it
    /// is due, or `None` if this suspicion is already running (foca arms
    /// again each time the suspect fails one of our probes; the first
    /// start counts).
    pub fn armed_dynamic(
        &mut self,
        timer: &Timer<NodeId>,
        now: Time,
        min: Duration,
        expected: u32,
        me: NameKey,
    ) -> Option<Time> {
        let (id, incarnation) = suspicion_of(timer)?;
        let confirmations = self.confirmations(id, incarnation, me);
        let entry = self.entry(id, incarnation);
        if entry.dynamic.is_some() {
            return None;
        }
        let mut d = Dynamic {
            timer: timer.clone(),
            start: now,
            min,
            expected,
            deadline: now,
        };
        d.deadline = d.deadline_with(confirmations);
        let at = d.deadline;
        entry.dynamic = Some(d);
        Some(at)
    }

    /// Distinct authors other than `me` of claims about `id` at `incarnation`.
    fn confirmations(&self, id: &NodeId, incarnation: Incarnation, me: NameKey) -> u32 {
        self.heard
            .get(&id.key())
            .filter(|h| &h.id == id && h.incarnation == incarnation)
            .map_or(0, |h| h.authors.iter().filter(|&&a| a != me).count() as u32)
    }

    /// A claim from another node: remember its author, and bring our own
    /// suspicion of the same suspect closer. Returns foca's timer and its
    /// new, earlier deadline when it moved.
    pub fn confirm(
        &mut self,
        claim: &Claim,
        now: Time,
        me: NameKey,
    ) -> Option<(Time, Timer<NodeId>)> {
        let author = claim.from.name().key();
        if author == me {
            return None;
        }
        let key = claim.suspect.name().key();
        let heard = self.heard.entry(key).or_insert_with(|| Heard {
            id: claim.suspect.clone(),
            incarnation: claim.incarnation,
            authors: Vec::new(),
            at: now,
        });
        let (known, claimed) = (
            (heard.id.version(), heard.incarnation),
            (claim.suspect.version(), claim.incarnation),
        );
        if claimed < known {
            return None;
        }
        if claimed > known {
            heard.id = claim.suspect.clone();
            heard.incarnation = claim.incarnation;
            heard.authors.clear();
        }
        if heard.authors.contains(&author) || heard.authors.len() >= AUTHORS_KEPT {
            return None;
        }
        heard.authors.push(author);
        heard.at = now;
        if self.heard.len() > 1024 {
            self.heard.retain(|_, h| now - h.at < HEARD_KEPT_FOR);
        }
        let confirmations = self.confirmations(&claim.suspect, claim.incarnation, me);
        let s = self.held.get_mut(&key)?;
        if s.id != claim.suspect || s.incarnation != claim.incarnation {
            return None;
        }
        let d = s.dynamic.as_mut()?;
        let sooner = d.deadline_with(confirmations);
        if sooner < d.deadline {
            d.deadline = sooner;
            return Some((sooner.max(now), d.timer.clone()));
        }
        None
    }

    /// foca's `timer` is due in the queue: whether to hand it to foca. A
    /// suspect-to-down timer on the dynamic timeout goes only at its
    /// current deadline, once (earlier deadlines leave later copies in the
    /// queue); one of a suspicion that ended goes nowhere under Lifeguard.
    /// Any other timer goes.
    pub fn due(&mut self, timer: &Timer<NodeId>, now: Time) -> bool {
        let Some((id, incarnation)) = suspicion_of(timer) else {
            return true;
        };
        let key = id.key();
        match self.held.get(&key) {
            Some(s) if &s.id == id && s.incarnation == incarnation => {
                if s.dynamic.as_ref().is_some_and(|d| d.deadline > now) {
                    return false;
                }
                self.held.remove(&key);
                true
            }
            // Ended (refuted, or down on evidence) or replaced by a newer
            // suspicion: with dynamic timeouts, nothing is left to do.
            _ => !self.buddy,
        }
    }

    /// The suspicion of `id` at `incarnation` ended.
    pub fn ended(&mut self, id: &NodeId, incarnation: Incarnation) {
        let key = id.key();
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
    /// already running at that incarnation (nothing changes then). A
    /// suspicion of ours on the dynamic timeout keeps running beside it.
    pub fn on_evidence(&mut self, id: &NodeId, incarnation: Incarnation) -> bool {
        let s = self.entry(id, incarnation);
        if s.evidence {
            return true;
        }
        s.evidence = true;
        s.told = None;
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
            if &s.id == to && (self.buddy || s.evidence) {
                Self::tell(s, now, every, &mut self.due);
            }
        }
    }

    /// Every suspect not told within `every` is due to be told (the reach's
    /// wake: a quiet cluster sends a suspect nothing for many periods).
    pub fn tell_all(&mut self, now: Time, every: Duration) {
        for s in self.held.values_mut() {
            if self.buddy || s.evidence {
                Self::tell(s, now, every, &mut self.due);
            }
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
        self.heard.clear();
        self.due.clear();
    }
}

/// The member and incarnation of foca's suspect-to-down timer.
fn suspicion_of(timer: &Timer<NodeId>) -> Option<(&NodeId, Incarnation)> {
    match timer {
        Timer::ChangeSuspectToDown {
            member_id,
            incarnation,
            ..
        } => Some((member_id, *incarnation)),
        _ => None,
    }
}

impl Suspicion {
    fn new(id: NodeId, incarnation: Incarnation) -> Self {
        Self {
            id,
            incarnation,
            told: None,
            evidence: false,
            dynamic: None,
        }
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
            // A suspect that refuted (or is gone) is not told: its
            // suspicion ended, though its timer may run on.
            let current = self
                .swim
                .iter_members()
                .find(|m| m.id() == &you)
                .map(|m| m.incarnation());
            if current.is_none_or(|i| i > incarnation) {
                self.io.suspicions.ended(&you, incarnation);
                continue;
            }
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
        if self.config.lifeguard && self.io.refuted.is_none_or(|i| incarnation > i) {
            // A suspicion of ourselves to refute: a sign we are slow.
            self.io.refuted = Some(incarnation);
            self.io.health.refuted();
            self.io.stats.lifeguard.refutes += 1;
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

    fn buddies() -> Suspicions {
        Suspicions::new(true)
    }

    #[test]
    fn a_suspect_is_told_once_per_period_while_the_suspicion_runs() {
        let mut s = buddies();
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
        s.due(&suspect(&x, 3), Time::ZERO);
        s.sending(&x, Time::from_duration(PERIOD * 5), PERIOD);
        assert!(s.due.is_empty(), "told after the suspicion ended");
    }

    #[test]
    fn a_stale_timer_does_not_end_a_newer_suspicion() {
        let mut s = buddies();
        let x = id(1);
        s.armed(&suspect(&x, 3));
        s.armed(&suspect(&x, 4));
        s.due(&suspect(&x, 3), Time::ZERO);
        s.sending(&x, Time::ZERO, PERIOD);
        assert_eq!(s.due, vec![(x, 4)]);
    }

    #[test]
    fn other_timers_are_not_suspicions() {
        let mut s = buddies();
        let x = id(1);
        s.armed(&Timer::RemoveDown(x.clone()));
        s.sending(&x, Time::ZERO, PERIOD);
        assert!(s.due.is_empty());
    }

    #[test]
    fn every_suspect_is_told_on_the_wake_once_per_period() {
        let mut s = buddies();
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

    fn claim(suspect: &NodeId, incarnation: Incarnation, from: &NodeId) -> Claim {
        Claim {
            suspect: suspect.clone(),
            incarnation,
            from: from.clone(),
        }
    }

    #[test]
    fn a_dynamic_suspicion_runs_max_alone_and_shortens_with_distinct_confirmations() {
        let mut s = buddies();
        let (x, me, a, b) = (id(1), id(2), id(3), id(4));
        let at = |secs: f64| Time::from_duration(Duration::from_secs_f64(secs));
        let min = Duration::from_secs(8);
        let timer = suspect(&x, 5);
        assert_eq!(
            s.armed_dynamic(&timer, Time::ZERO, min, 2, me.name().key()),
            Some(at(48.0)),
            "alone: six times the suspicion timeout"
        );
        assert_eq!(
            s.armed_dynamic(&timer, at(1.0), min, 2, me.name().key()),
            None,
            "armed again by a later failed probe: the first start counts"
        );
        let mine = me.name().key();
        assert_eq!(
            s.confirm(&claim(&x, 5, &me), at(1.0), mine),
            None,
            "own claim"
        );
        assert_eq!(
            s.confirm(&claim(&x, 5, &a), at(2.0), mine),
            Some((at(22.762), timer.clone()))
        );
        assert_eq!(
            s.confirm(&claim(&x, 5, &a), at(2.5), mine),
            None,
            "same author"
        );
        assert_eq!(
            s.confirm(&claim(&x, 4, &b), at(2.5), mine),
            None,
            "older incarnation"
        );
        assert_eq!(
            s.confirm(&claim(&x, 5, &b), at(3.0), mine),
            Some((at(8.0), timer.clone()))
        );
        assert!(!s.due(&timer, at(7.9)), "not before its deadline");
        assert!(s.due(&timer, at(8.0)));
        assert!(!s.due(&timer, at(22.762)), "a later copy finds it spent");
        assert!(!s.due(&timer, at(48.0)));
    }

    #[test]
    fn claims_heard_before_our_own_probe_failed_count_at_once() {
        let mut s = buddies();
        let (x, me) = (id(1), id(2));
        let mine = me.name().key();
        for from in 3..5 {
            s.confirm(&claim(&x, 0, &id(from)), Time::ZERO, mine);
        }
        let min = Duration::from_secs(8);
        assert_eq!(
            s.armed_dynamic(&suspect(&x, 0), Time::ZERO, min, 2, mine),
            Some(Time::from_duration(min))
        );
    }

    #[test]
    fn without_the_buddy_system_only_evidence_is_told() {
        let mut s = Suspicions::new(false);
        let (x, y) = (id(1), id(2));
        s.armed(&suspect(&x, 0));
        s.sending(&x, Time::ZERO, PERIOD);
        s.tell_all(Time::ZERO, PERIOD);
        assert!(s.due.is_empty());
        assert!(!s.on_evidence(&y, 0));
        assert_eq!(s.due, vec![(y.clone(), 0)]);
        assert!(
            s.due(&suspect(&x, 0), Time::ZERO),
            "plain timers go to foca"
        );
    }
}
