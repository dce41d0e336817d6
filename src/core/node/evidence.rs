//! Evidence from the network: when a member's process dies but its host
//! stays up, the host answers the next datagram sent to the gossip port
//! with ICMP "port unreachable". The driver reads these from the socket's
//! error queue and hands them in as [`Node::handle_unreachable`].
//!
//! That is strong evidence, but a forgeable one, so it only shortens the
//! suspicion, never skips it: the member becomes suspect at once (gossiped
//! like any suspicion) and is declared down after
//! [`Config::evidence_timeout`](crate::core::Config::evidence_timeout)
//! unless it refutes first. It is told it is suspected at once (see
//! `suspicion`), and a live member refutes within a round trip and answers
//! the teller directly with its new incarnation; a forged message costs a
//! live member one incarnation and nobody's view. After a refutation, the
//! network's word about that member is not taken again for
//! [`QUIET_AFTER_REFUTE`], so a stream of forged messages cannot keep a
//! live member's incarnation climbing faster than once per that interval
//! per node.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use foca::{Incarnation, Member, State};

use super::io::Wake;
use super::Node;
use crate::core::identity::NodeId;
use crate::core::name::NameKey;
use crate::core::time::Time;

/// How long the network's word about a member is ignored after that member
/// refuted a suspicion raised on it.
pub(super) const QUIET_AFTER_REFUTE: Duration = Duration::from_secs(60);

/// A node's network-evidence bookkeeping.
#[derive(Default)]
pub(super) struct Evidence {
    /// Members whose evidence is ignored until the time given.
    quiet: BTreeMap<NameKey, Time>,
}

/// What became of one report of an unreachable address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unreachable {
    /// The member at that address is now suspected on a short timeout.
    Suspected,
    /// The member at that address was already suspected on evidence.
    AlreadySuspected,
    /// No active member has that address (a stale or forged report).
    Unknown,
    /// The member refuted a suspicion on evidence recently: ignored.
    Quiet,
    /// Network evidence is off, or this node has left.
    Ignored,
}

impl Node {
    /// Takes the network's word that `addr` has no process on its port
    /// (ICMP port unreachable, or a QUIC peer that refused): the active
    /// member at `addr` becomes suspect at once, on a short timeout during
    /// which it can still refute. See the module docs for why a forged
    /// report cannot make a live member stopped.
    pub fn handle_unreachable(&mut self, now: Time, addr: SocketAddr) -> Unreachable {
        self.begin(now);
        let outcome = self.unreachable(addr);
        match outcome {
            Unreachable::Suspected => self.io.stats.evidence.suspected += 1,
            Unreachable::AlreadySuspected => self.io.stats.evidence.repeated += 1,
            _ => self.io.stats.evidence.ignored += 1,
        }
        self.settle();
        outcome
    }

    fn unreachable(&mut self, addr: SocketAddr) -> Unreachable {
        if self.left || !self.config.network_evidence {
            return Unreachable::Ignored;
        }
        let Some((id, incarnation, state)) = self
            .swim
            .iter_members()
            .find(|m| m.id().addr() == addr)
            .map(|m| (m.id().clone(), m.incarnation(), m.state()))
        else {
            return Unreachable::Unknown;
        };
        let key = id.key();
        let now = self.io.now;
        if self
            .evidence
            .quiet
            .get(&key)
            .is_some_and(|until| now < *until)
        {
            return Unreachable::Quiet;
        }
        if self.io.suspicions.on_evidence(&id, incarnation) {
            return Unreachable::AlreadySuspected;
        }
        if state == State::Alive {
            let suspect = Member::new(id.clone(), incarnation, State::Suspect);
            self.apply_one(suspect);
        }
        let at = now + self.config.evidence_timeout;
        self.io.timers.push(at, Wake::Evidence(id, incarnation));
        Unreachable::Suspected
    }

    /// A suspicion on evidence ran its course: down, unless refuted.
    pub(super) fn evidence_due(&mut self, id: NodeId, incarnation: Incarnation) {
        self.io.suspicions.ended(&id, incarnation);
        let still = self
            .swim
            .iter_members()
            .find(|m| m.id() == &id)
            .is_some_and(|m| m.state() == State::Suspect && m.incarnation() == incarnation);
        if still {
            let down = Member::new(id, incarnation, State::Down);
            self.apply_one(down);
        } else {
            let until = self.io.now + QUIET_AFTER_REFUTE;
            self.evidence.quiet.insert(id.key(), until);
            if self.evidence.quiet.len() > self.swim.num_members() + 16 {
                let now = self.io.now;
                self.evidence.quiet.retain(|_, t| now < *t);
            }
        }
    }
}
