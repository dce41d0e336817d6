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

/// Claims heard and not yet taken by the node.
pub(super) type Inbox = Arc<Mutex<Vec<Claim>>>;

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

/// foca's handler of custom broadcasts: decodes claims, passes each new one
/// to the node, and tells foca to relay the first few of each suspicion.
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
        _sender: Option<&NodeId>,
    ) -> Result<Option<ClaimKey>, MalformedClaim> {
        let claim: Claim = postcard::from_bytes(data).map_err(|_| MalformedClaim)?;
        let (suspect, from) = (claim.suspect.name().key(), claim.from.name().key());
        let version = claim.suspect.version();
        let id = (suspect, version, claim.incarnation, from);
        if !self.seen.insert(id) {
            // Heard before: neither counted nor relayed again.
            return Ok(None);
        }
        self.order.push_back(id);
        if self.order.len() > REMEMBERED {
            if let Some(old) = self.order.pop_front() {
                self.seen.remove(&old);
            }
        }
        let key = ClaimKey {
            suspect,
            from,
            age: (version, claim.incarnation),
        };
        if self.relayed.len() > REMEMBERED {
            self.relayed.clear();
        }
        let relayed = self
            .relayed
            .entry((suspect, version, claim.incarnation))
            .or_insert(0);
        let relay = *relayed < RELAYED;
        if relay {
            *relayed += 1;
        }
        self.inbox
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push(claim);
        Ok(relay.then_some(key))
    }
}

impl Node {
    /// After every input: broadcast the claims of our failed probes, and
    /// count the claims heard against our own suspicions, bringing a
    /// suspect-to-down timer forward when a confirmation shortens it.
    pub(super) fn exchange_claims(&mut self) {
        let from = self.swim.identity().clone();
        for (suspect, incarnation) in std::mem::take(&mut self.io.claims_out) {
            let claim = Claim {
                suspect,
                incarnation,
                from: from.clone(),
            };
            if self.swim.add_broadcast(&claim.encode()).is_err() {
                self.io.stats.timer_errors += 1;
            }
        }
        let heard = std::mem::take(
            &mut *self
                .inbox
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner()),
        );
        if !self.config.lifeguard {
            return;
        }
        let (now, me) = (self.io.now, self.io.me);
        for claim in heard {
            if let Some((at, timer)) = self.io.suspicions.confirm(&claim, now, me) {
                self.io.stats.lifeguard.confirmations += 1;
                self.io.timers.push(at, Wake::Swim(timer));
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

    #[test]
    fn a_claim_is_passed_on_and_relayed_once() {
        let inbox = Inbox::default();
        let mut h = ClaimHandler::new(inbox.clone());
        let claim = Claim {
            suspect: id(1),
            incarnation: 2,
            from: id(3),
        };
        let bytes = claim.encode();
        assert!(h.receive_item(&bytes, None).unwrap().is_some());
        assert!(
            h.receive_item(&bytes, None).unwrap().is_none(),
            "a repeat is not relayed"
        );
        assert_eq!(*inbox.lock().unwrap(), vec![claim]);
    }

    #[test]
    fn only_the_first_claims_of_a_suspicion_are_relayed_but_all_are_counted() {
        let inbox = Inbox::default();
        let mut h = ClaimHandler::new(inbox.clone());
        let relayed: Vec<bool> = (2..8)
            .map(|from| {
                let claim = Claim {
                    suspect: id(1),
                    incarnation: 0,
                    from: id(from),
                };
                h.receive_item(&claim.encode(), None).unwrap().is_some()
            })
            .collect();
        let first = usize::from(RELAYED);
        assert!(relayed[..first].iter().all(|&r| r));
        assert!(relayed[first..].iter().all(|&r| !r));
        assert_eq!(
            inbox.lock().unwrap().len(),
            6,
            "every claim reaches the node"
        );
    }

    #[test]
    fn garbage_is_refused_and_changes_nothing() {
        let inbox = Inbox::default();
        let mut h = ClaimHandler::new(inbox.clone());
        assert!(h.receive_item(&[0xff, 0xff, 0xff], None).is_err());
        assert!(inbox.lock().unwrap().is_empty());
    }

    #[test]
    fn a_claim_about_a_renewed_suspect_is_new_at_the_same_incarnation() {
        let inbox = Inbox::default();
        let mut h = ClaimHandler::new(inbox.clone());
        let before = Claim {
            suspect: id(1),
            incarnation: 0,
            from: id(3),
        };
        let after = Claim {
            suspect: id(1).renewed(),
            ..before.clone()
        };
        assert!(h.receive_item(&before.encode(), None).unwrap().is_some());
        assert!(h.receive_item(&after.encode(), None).unwrap().is_some());
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
