//! Suspicion claims: "I suspect X at incarnation i", spread as foca custom
//! broadcasts, so a suspicion can count who else suspects (Lifeguard's
//! dynamic suspicion).
//!
//! foca's member updates say that a member is suspect, not who suspects
//! it, and a node relays every update it learns, so an update proves
//! nothing about independence. A claim names its author: a node makes one
//! only when its own probe of the member failed (foca arms its
//! suspect-to-down timer only then), and foca piggybacks it on the
//! following messages like any update. Each node keeps the claims it heard,
//! by suspect, and its own suspicion of that suspect counts the distinct
//! authors other than itself as confirmations.
//!
//! foca hands a received broadcast to [`ClaimHandler::receive_item`], inside
//! `Foca::handle_data`, and offers no way back to the handler afterwards;
//! the handler leaves each new claim in an inbox the node shares with it
//! and drains after the datagram.
//!
//! Claims to send (our own, and those worth relaying) wait in the node's
//! [`Outbox`], and go to foca's broadcast backlog a few at a time: foca
//! fills a message by popping its whole backlog whenever the room left is
//! smaller than the next item, so each message costs O(B log B) in the
//! backlog's size B. In a cut of N nodes every node has claims about N/2
//! suspects to spread, more than its messages can carry; a backlog of
//! thousands made every message of a 700-node cut slow. foca sends as
//! many claims per message either way; the outbox keeps the backlog at
//! [`IN_FLIGHT`], sends our own claims first, and past [`QUEUED`] drops
//! relays and counts them (claims only shorten suspicions: one lost makes a
//! suspicion run longer, never wrong).

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::{Arc, Mutex};

use foca::{BroadcastHandler, Incarnation, Invalidates};
use serde::{Deserialize, Serialize};

use super::io::Wake;
use super::Node;
use crate::core::dynamic_suspicion::EXPECTED_CONFIRMATIONS;
use crate::core::identity::NodeId;
use crate::core::name::NameKey;

/// One node's claim that it suspects a member.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Claim {
    /// The member suspected.
    pub suspect: NodeId,
    /// At this incarnation.
    pub incarnation: Incarnation,
    /// The node whose probe failed.
    pub from: NodeId,
}

impl Claim {
    /// The claim as foca carries it.
    pub fn encode(&self) -> Vec<u8> {
        // A struct of names, addresses and integers always serializes.
        postcard::to_allocvec(self).unwrap_or_default()
    }
}

/// Claims heard and not yet taken by the node, each with whether it is
/// worth relaying.
pub(super) type Inbox = Arc<Mutex<Vec<(Claim, bool)>>>;

/// How many claims foca's broadcast backlog holds at most: a message
/// carries about twenty.
const IN_FLIGHT: usize = 16;

/// How many claims wait in the outbox at most; relays past it are dropped.
const QUEUED: usize = 1024;

/// Claims waiting for room in foca's broadcast backlog.
#[derive(Default)]
pub(super) struct Outbox {
    queue: VecDeque<Claim>,
}

/// How many claims the handler remembers to recognise repeats.
const REMEMBERED: usize = 4096;

/// What makes a claim the same claim: the suspect's identity (name and
/// version: a restarted or renewed member starts again at incarnation 0),
/// the incarnation, and the author.
type Seen = (NameKey, (u64, u32), Incarnation, NameKey);

/// One suspicion: the suspect's name, version and incarnation.
type Suspicion = (NameKey, (u64, u32), Incarnation);

/// How many claims about one suspicion are relayed: the first claim and
/// the confirmations a suspicion waits for. Later claims are still counted
/// where they arrive, but not spread: in a cut of N nodes every node's
/// probes of the other side fail, and relaying every claim would flood
/// each side with N^2 of them (memberlist stops re-broadcasting a suspect
/// message the same way).
const RELAYED: u8 = 1 + EXPECTED_CONFIRMATIONS as u8;

/// foca's handler of custom broadcasts: decodes claims and passes each new
/// one to the node, marking the first few of each suspicion for relay (the
/// node relays them through its outbox; foca relays nothing itself).
pub(super) struct ClaimHandler {
    inbox: Inbox,
    seen: BTreeSet<Seen>,
    order: VecDeque<Seen>,
    relayed: BTreeMap<Suspicion, u8>,
}

impl ClaimHandler {
    /// A handler that leaves new claims in `inbox`.
    pub fn new(inbox: Inbox) -> Self {
        Self {
            inbox,
            seen: BTreeSet::new(),
            order: VecDeque::new(),
            relayed: BTreeMap::new(),
        }
    }
}

/// A claim that is not one.
#[derive(Debug, thiserror::Error)]
#[error("malformed suspicion claim")]
pub(super) struct MalformedClaim;

/// What foca keys a claim by in its broadcast backlog: a newer claim by the
/// same author about the same suspect (a later identity, or a later
/// incarnation of the same one) replaces an older one.
pub(super) struct ClaimKey {
    suspect: NameKey,
    from: NameKey,
    /// The suspect's version, then the incarnation.
    age: ((u64, u32), Incarnation),
}

impl Invalidates for ClaimKey {
    fn invalidates(&self, other: &Self) -> bool {
        self.suspect == other.suspect && self.from == other.from && self.age >= other.age
    }
}

impl BroadcastHandler<NodeId> for ClaimHandler {
    type Key = ClaimKey;
    type Error = MalformedClaim;

    fn receive_item(
        &mut self,
        data: &[u8],
        sender: Option<&NodeId>,
    ) -> Result<Option<ClaimKey>, MalformedClaim> {
        let claim: Claim = postcard::from_bytes(data).map_err(|_| MalformedClaim)?;
        let (suspect, from) = (claim.suspect.name().key(), claim.from.name().key());
        let version = claim.suspect.version();
        let id = (suspect, version, claim.incarnation, from);
        let new = self.seen.insert(id);
        if new {
            self.order.push_back(id);
            if self.order.len() > REMEMBERED {
                if let Some(old) = self.order.pop_front() {
                    self.seen.remove(&old);
                }
            }
        }
        if self.relayed.len() > REMEMBERED {
            self.relayed.clear();
        }
        let relayed = self
            .relayed
            .entry((suspect, version, claim.incarnation))
            .or_insert(0);
        if sender.is_none() {
            // From the node's outbox (`Foca::add_broadcast`): our own claim,
            // which is the first to count, or a relay already counted.
            if new {
                *relayed = relayed.saturating_add(1);
            }
            return Ok(Some(ClaimKey {
                suspect,
                from,
                age: (version, claim.incarnation),
            }));
        }
        if !new {
            // Heard before: neither counted nor relayed again.
            return Ok(None);
        }
        let relay = *relayed < RELAYED;
        if relay {
            *relayed += 1;
        }
        self.inbox
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push((claim, relay));
        Ok(None)
    }
}

impl Node {
    /// After every input: broadcast the claims of our failed probes, and
    /// count the claims heard against our own suspicions, bringing a
    /// suspect-to-down timer forward when a confirmation shortens it.
    pub(super) fn exchange_claims(&mut self) {
        let from = self.swim.identity().clone();
        for (suspect, incarnation) in std::mem::take(&mut self.io.claims_out) {
            self.outbox.queue.push_front(Claim {
                suspect,
                incarnation,
                from: from.clone(),
            });
        }
        let heard = std::mem::take(
            &mut *self
                .inbox
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner()),
        );
        let (now, me) = (self.io.now, self.io.me);
        for (claim, relay) in heard {
            if self.config.lifeguard {
                if let Some((at, timer)) = self.io.suspicions.confirm(&claim, now, me) {
                    self.io.stats.lifeguard.confirmations += 1;
                    self.io.timers.push(at, Wake::Swim(timer));
                }
            }
            if relay {
                self.outbox.queue.push_back(claim);
            }
        }
        while self.outbox.queue.len() > QUEUED {
            self.outbox.queue.pop_back();
            self.io.stats.lifeguard.claims_dropped += 1;
        }
        while self.swim.custom_broadcast_backlog() < IN_FLIGHT {
            let Some(claim) = self.outbox.queue.pop_front() else {
                break;
            };
            if self.swim.add_broadcast(&claim.encode()).is_err() {
                self.io.stats.timer_errors += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(i: u16) -> NodeId {
        let name = format!("rc{i}@127.0.0.1").parse().unwrap();
        NodeId::new(name, ([127, 0, 0, 1], 4370 + i).into(), 1)
    }

    fn claim(suspect: NodeId, incarnation: Incarnation, from: u16) -> Claim {
        Claim {
            suspect,
            incarnation,
            from: id(from),
        }
    }

    /// Hands `c` to the handler as foca does for a received message.
    fn hear(h: &mut ClaimHandler, c: &Claim) -> Option<ClaimKey> {
        h.receive_item(&c.encode(), Some(&id(99))).unwrap()
    }

    #[test]
    fn a_heard_claim_reaches_the_node_once_and_foca_relays_nothing_itself() {
        let inbox = Inbox::default();
        let mut h = ClaimHandler::new(inbox.clone());
        let c = claim(id(1), 2, 3);
        assert!(hear(&mut h, &c).is_none());
        assert!(hear(&mut h, &c).is_none());
        assert_eq!(
            *inbox.lock().unwrap(),
            vec![(c, true)],
            "a repeat is dropped"
        );
    }

    #[test]
    fn a_claim_from_the_outbox_goes_to_foca_and_counts_as_relayed() {
        let inbox = Inbox::default();
        let mut h = ClaimHandler::new(inbox.clone());
        let own = claim(id(1), 0, 2);
        assert!(h.receive_item(&own.encode(), None).unwrap().is_some());
        assert!(inbox.lock().unwrap().is_empty(), "our own claim is no news");
        let relays: Vec<bool> = (3..3 + u16::from(RELAYED))
            .map(|from| {
                hear(&mut h, &claim(id(1), 0, from));
                inbox.lock().unwrap().last().unwrap().1
            })
            .collect();
        let mut expected = vec![true; usize::from(RELAYED) - 1];
        expected.push(false);
        assert_eq!(relays, expected);
    }

    #[test]
    fn only_the_first_claims_of_a_suspicion_are_marked_for_relay_but_all_are_counted() {
        let inbox = Inbox::default();
        let mut h = ClaimHandler::new(inbox.clone());
        for from in 2..8 {
            hear(&mut h, &claim(id(1), 0, from));
        }
        let relayed: Vec<bool> = inbox.lock().unwrap().iter().map(|(_, r)| *r).collect();
        let first = usize::from(RELAYED);
        assert_eq!(relayed.len(), 6, "every claim reaches the node");
        assert!(relayed[..first].iter().all(|&r| r));
        assert!(relayed[first..].iter().all(|&r| !r));
    }

    #[test]
    fn garbage_is_refused_and_changes_nothing() {
        let inbox = Inbox::default();
        let mut h = ClaimHandler::new(inbox.clone());
        assert!(h.receive_item(&[0xff, 0xff, 0xff], Some(&id(9))).is_err());
        assert!(inbox.lock().unwrap().is_empty());
    }

    #[test]
    fn a_claim_about_a_renewed_suspect_is_new_at_the_same_incarnation() {
        let inbox = Inbox::default();
        let mut h = ClaimHandler::new(inbox.clone());
        hear(&mut h, &claim(id(1), 0, 3));
        hear(&mut h, &claim(id(1).renewed(), 0, 3));
        assert_eq!(inbox.lock().unwrap().len(), 2);
    }

    #[test]
    fn a_newer_claim_by_the_same_author_replaces_the_older() {
        let key = |from: u16, renewal, inc| ClaimKey {
            suspect: id(1).name().key(),
            from: id(from).name().key(),
            age: ((1, renewal), inc),
        };
        assert!(key(3, 0, 2).invalidates(&key(3, 0, 1)));
        assert!(!key(3, 0, 1).invalidates(&key(3, 0, 2)));
        assert!(key(3, 1, 0).invalidates(&key(3, 0, 5)));
        assert!(!key(4, 0, 2).invalidates(&key(3, 0, 2)));
    }
}
