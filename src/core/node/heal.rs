//! Autoheal: how a node meets the other side of a partition, and rejoins it
//! if its side lost (the decision itself is [`crate::core::autoheal`]).
//!
//! Evidence comes from two places: a gossip datagram from a member this node
//! holds down (its header is read before foca sees it), and a sync summary,
//! which carries the sender's side and the version of this node it holds
//! down, if any (every node keeps sending its summary to members it holds
//! down: see `reach`). Then:
//!
//! * each holds the other down: a partition. The sides compare; the loser
//!   tells its side-mates that their side lost (a `Follow`), discards its
//!   view, renews its identity and takes the winner's view by a sync
//!   session; the winner tells the loser (a summary). A side-mate that
//!   hears `Follow` from an active member, and is itself apart from the
//!   winner, rejoins the same winner at once: the losing side moves in one
//!   step instead of node by node.
//! * only the other holds this node down, and it is an active member here.
//!   If this node holds nobody down, its own cluster declared it down (a
//!   false positive): it renews and keeps its view. If it holds a few
//!   members down (under a quarter of those it knows), it was cut off or
//!   declared down under loss: it rejoins the other's side if that side is
//!   at least half as large as its own. If it holds a quarter or more down,
//!   the cut was lifted before it had told every member of
//!   the other side apart: the sides compare as in a partition; a loser
//!   rejoins, a winner takes the peer down too, so that the peer's next
//!   look at its summary is mutual evidence.
//! * otherwise: this node tells the other (a summary), and waits for the
//!   failure detector to make the evidence mutual.
//!
//! While a loser takes the winner's view it listens to the winner and to
//! side-mates that rejoined too (under renewed identities, with views as
//! fresh as its own) only: the *merge barrier*. The rest of its former side
//! still gossips that the winners are down, and a `Down` taken in before
//! the winner's records would be final for their versions. The barrier
//! lifts when the winner's records arrive
//! (one sync exchange, re-asked every probe period if lost), and at the
//! latest after [`MERGE_BARRIER`].
//!
//! The loser's former side-mates come back under renewed identities; the
//! loser reports each as `MemberRenewed`, not as a second `MemberUp`.
//!
//! A gossip datagram carries no side, so it only makes this node send its
//! summary. Summaries are rate-limited to one per peer per second.

use std::collections::BTreeMap;
use std::time::Duration;

use foca::Codec;

use super::reach::FORMER_GRACE;
use super::Node;
use crate::core::autoclean::DownClock;
use crate::core::autoheal::{decide, Side, Verdict};
use crate::core::event::Event;
use crate::core::identity::NodeId;
use crate::core::name::{NameKey, NodeName};
use crate::core::sync::SyncMsg;
use crate::core::time::Time;
use crate::core::tombstone::Tombstones;
use crate::core::wire::Kind;

/// At most one unsolicited summary per peer per this interval.
const NUDGE_INTERVAL: Duration = Duration::from_secs(1);

/// The longest a losing node listens to the winner only.
pub(super) const MERGE_BARRIER: Duration = Duration::from_secs(2);

/// The winner a losing node is merging into.
#[derive(Clone, Debug)]
pub(super) struct Merging {
    /// The winner.
    pub winner: NodeId,
    /// When the merge barrier lifts, merged or not.
    pub until: Time,
}

/// A node's autoheal bookkeeping.
#[derive(Default)]
pub(super) struct HealState {
    /// The peer whose partition is being healed, if any.
    pub episode: Option<NodeId>,
    /// The winner this node is merging into, after losing.
    pub merging: Option<Merging>,
    /// When each peer was last sent an unsolicited summary.
    nudged: BTreeMap<NameKey, Time>,
    /// When each removed node was last told so.
    pub noticed: BTreeMap<NameKey, Time>,
    /// After losing: the active members of the side this node left, by
    /// name, until each comes back renewed (or `former_until` passes).
    pub former: BTreeMap<NameKey, NodeId>,
    /// When the renewals of `former` stop being waited for.
    pub former_until: Time,
    /// A former side-mate just reported renewed through foca's `Rename`:
    /// the `MemberUp` foca sends right after (its old record was down in
    /// the fresh view) is the same news, not a second one.
    pub renewed_now: Option<NameKey>,
    /// Whether this node's side staying was counted (`Stats::autoheal_won`):
    /// once while it holds members down, not once per summary.
    pub won: bool,
    /// Set when this node rejoined a winner under a renewed identity: the
    /// next seeds discovery finds are all announced to, members or not.
    /// The winners it already holds as members (from the winner's records)
    /// still hold its old identity down until they hear the new one.
    pub announce_all: bool,
    /// The lowest name among the active members and this node, while known.
    /// Every sync summary carries it; finding it compares every member's
    /// name, so it is kept up to date from foca's notifications instead.
    pub lowest: Option<NodeName>,
    /// How many active members (this node excluded) are core nodes, while
    /// known: kept from foca's notifications as `lowest` is.
    pub cores: Option<u32>,
}

impl HealState {
    /// Whether the merge barrier keeps out a datagram from `sender` at `now`
    /// (and lifts the barrier once its time is up).
    ///
    /// The barrier keeps out what may still hold the winners down. A former
    /// side-mate under a renewed version has rejoined too and discarded its
    /// view as this node did: it passes, so the renewals of a side that
    /// rejoins at once are taken as they arrive, not left to gossip after
    /// the barrier.
    pub fn bars(&mut self, now: Time, sender: &NodeId) -> bool {
        match &self.merging {
            Some(m) if now >= m.until => {
                self.merging = None;
                false
            }
            Some(m) => {
                let key = sender.name().key();
                let renewed_mate = self
                    .former
                    .get(&key)
                    .is_some_and(|old| old.version() < sender.version());
                m.winner.name().key() != key && !renewed_mate
            }
            None => false,
        }
    }

    /// Drops rate-limit entries older than a minute.
    pub fn prune(&mut self, now: Time) {
        let fresh = |at: &mut Time| now - *at < Duration::from_secs(60);
        self.nudged.retain(|_, at| fresh(at));
        self.noticed.retain(|_, at| fresh(at));
    }
}

/// What a gossip datagram's header says about its sender.
pub(super) enum Screened {
    /// The sender is covered by a tombstone.
    Removed(NodeId),
    /// The sender is held down, at this very identity.
    HeldDown(NodeId),
}

/// The sender of a gossip datagram, read from its header.
pub(super) fn sender_of(body: &[u8]) -> Option<NodeId> {
    foca::PostcardCodec.decode_header(body).ok().map(|h| h.src)
}

/// What this node's tombstones and down records say of a gossip datagram's
/// sender.
pub(super) fn screen(tombstones: &Tombstones, down: &DownClock, src: NodeId) -> Option<Screened> {
    if tombstones.covers(&src) {
        Some(Screened::Removed(src))
    } else if down
        .get(src.name().key())
        .is_some_and(|d| d.version == src.version())
    {
        Some(Screened::HeldDown(src))
    } else {
        None
    }
}

impl Node {
    pub(super) fn act_on(&mut self, s: Screened) {
        match s {
            Screened::Removed(id) => self.tell_removed(&id),
            Screened::HeldDown(id) => self.nudge(&id),
        }
    }

    /// Whether this node holds `id` down at that very identity.
    fn held_down(&self, id: &NodeId) -> bool {
        self.down
            .get(id.key())
            .is_some_and(|d| d.version == id.version())
    }

    /// This node's side: itself and its active members.
    pub(super) fn side(&mut self) -> Side {
        // foca's notifications of this input are settled (and the cache
        // kept) only after it: until then the cache may be behind.
        let settled = self.io.notes.is_empty();
        let lowest = match &self.heal.lowest {
            Some(lowest) if settled => {
                debug_assert_eq!(lowest, &self.lowest_name(), "stale lowest name");
                lowest.clone()
            }
            _ => {
                let lowest = self.lowest_name();
                if settled {
                    self.heal.lowest = Some(lowest.clone());
                }
                lowest
            }
        };
        let members = match self.heal.cores {
            Some(cores) if settled => {
                debug_assert_eq!(cores, self.core_members(), "stale core count");
                cores
            }
            _ => {
                let cores = self.core_members();
                if settled {
                    self.heal.cores = Some(cores);
                }
                cores
            }
        };
        let me = u32::from(self.config.role.is_core());
        Side {
            size: u32::try_from(self.swim.num_members() + 1).unwrap_or(u32::MAX),
            lowest,
            cores: members.saturating_add(me),
        }
    }

    /// How many active members are core nodes, by a scan.
    fn core_members(&self) -> u32 {
        let n = self
            .swim
            .iter_members()
            .filter(|m| m.id().role().is_core())
            .count();
        u32::try_from(n).unwrap_or(u32::MAX)
    }

    /// Keeps the core count current: a member came up or went down (foca
    /// reports either only for a member that was, or becomes, active).
    ///
    /// A member that comes up is held under the identity reported, role
    /// included. One that goes down is reported under the identity of the
    /// update that took it down, which may carry another role than the
    /// record held (a role takes no part in identity equality, so foca
    /// keeps the record and only changes its state): the count is read
    /// again at the next summary instead.
    pub(super) fn track_cores(&mut self, id: &NodeId, up: bool) {
        if !up {
            self.heal.cores = None;
        } else if let (Some(cores), true) = (self.heal.cores.as_mut(), id.role().is_core()) {
            *cores = cores.saturating_add(1);
        }
    }

    /// A record changed identity (foca's `Rename`): under another role the
    /// count is read again at the next summary.
    pub(super) fn track_renamed_role(&mut self, old: &NodeId, new: &NodeId) {
        if old.role() != new.role() {
            self.heal.cores = None;
        }
    }

    fn lowest_name(&self) -> NodeName {
        let me = self.swim.identity().name();
        self.swim
            .iter_members()
            .map(|m| m.id().name())
            .fold(me, |lo, n| if n < lo { n } else { lo })
            .clone()
    }

    /// Keeps the lowest name current: a member came up or went down.
    pub(super) fn track_lowest(&mut self, name: &NodeName, up: bool) {
        match &self.heal.lowest {
            Some(lo) if up && name < lo => self.heal.lowest = Some(name.clone()),
            Some(lo) if !up && name == lo => self.heal.lowest = None,
            _ => {}
        }
    }

    /// Looks at a sync message for removal and partition evidence. Returns
    /// true when the message was dealt with here and must not be processed
    /// further.
    pub(super) fn screen_sync(&mut self, msg: &SyncMsg) -> bool {
        let from = msg.from().clone();
        if self.tombstones.covers(&from) {
            self.tell_removed(&from);
            return true;
        }
        let we_hold = self.held_down(&from);
        let me = self.swim.identity().version();
        match msg {
            SyncMsg::Summary {
                side, you_are_down, ..
            } => {
                let they_hold = *you_are_down == Some(me);
                if !we_hold && !they_hold {
                    return false;
                }
                self.evidence(from, side.clone(), we_hold, they_hold);
                true
            }
            SyncMsg::Notice { .. } => false,
            _ if we_hold => {
                self.nudge(&from);
                true
            }
            _ => false,
        }
    }

    fn evidence(&mut self, peer: NodeId, theirs: Side, we_hold: bool, they_hold: bool) {
        if self.left {
            return;
        }
        let ours = self.side();
        if we_hold && they_hold {
            if self.heal.episode.is_none() {
                self.heal.episode = Some(peer.clone());
                self.io
                    .events
                    .push_back(Event::PartitionDetected { peer: peer.clone() });
            }
            if !self.config.autoheal {
                return;
            }
            match decide(&ours, &theirs, they_hold) {
                Verdict::Stay => {
                    self.count_win();
                    self.nudge(&peer)
                }
                Verdict::Rejoin => self.rejoin_side(peer, &theirs, true),
            }
        } else if they_hold && self.swim.iter_members().any(|m| m.id() == &peer) {
            if self.down.is_empty() {
                // Our own cluster declared us down: a false positive.
                self.renew_self(false);
            } else if self.config.autoheal {
                // We hold others down while the peer, still active here,
                // holds us down. Holding a few down, we are the odd one
                // out (cut off, or declared down under loss): the peer
                // speaks for the cluster, and we rejoin its side unless it
                // is under half the size of ours. Holding a quarter or more
                // of the members we know down, this is the other side of a split whose
                // members we had not all told apart yet (the cut was
                // lifted mid-detection): the sides compare as in a
                // partition, and a winner takes the peer down, so that the
                // peer's next look at our summary is mutual evidence.
                let down = self.down.len() as u64;
                let split = down * 4 >= down + u64::from(ours.size);
                let verdict = if split {
                    decide(&ours, &theirs, they_hold)
                } else if theirs.replicants_only_against(&ours) {
                    // Replicants alone never win against core nodes.
                    Verdict::Stay
                } else if u64::from(theirs.size) * 2 >= u64::from(ours.size) {
                    Verdict::Rejoin
                } else {
                    Verdict::Stay
                };
                match verdict {
                    Verdict::Rejoin => self.rejoin_side(peer, &theirs, true),
                    Verdict::Stay if split => {
                        self.count_win();
                        self.hold_down(&peer);
                        self.nudge(&peer);
                    }
                    Verdict::Stay => {
                        self.count_win();
                        self.nudge(&peer)
                    }
                }
            } else {
                self.nudge(&peer);
            }
        } else if they_hold && self.config.autoheal {
            // A side that holds us down and that we do not know: one that
            // met ours while we were away (we restarted, or forgot it).
            match decide(&ours, &theirs, they_hold) {
                Verdict::Rejoin => self.rejoin_side(peer, &theirs, true),
                Verdict::Stay => {
                    self.count_win();
                    // Hold it down too, so its next look at our summary is
                    // mutual evidence and it rejoins us.
                    self.hold_down(&peer);
                    self.nudge(&peer);
                }
            }
        } else {
            self.nudge(&peer);
        }
    }

    /// Autoheal kept this node's side: counted once until this node holds
    /// nobody down again (the other side comes back renewed, one by one).
    fn count_win(&mut self) {
        if !std::mem::replace(&mut self.heal.won, true) {
            self.io.stats.autoheal_won += 1;
        }
    }

    /// Takes `id` as down (it is unknown here) and starts its down clock.
    fn hold_down(&mut self, id: &NodeId) {
        self.put_down(id);
        self.down.note(id.key(), id.version(), self.io.now);
    }

    /// Sends `peer` this node's summary (side, and whether we hold it down),
    /// at most once a second.
    pub(super) fn nudge(&mut self, peer: &NodeId) {
        let key = peer.name().key();
        let now = self.io.now;
        if self
            .heal
            .nudged
            .get(&key)
            .is_some_and(|at| now - *at < NUDGE_INTERVAL)
        {
            return;
        }
        self.heal.nudged.insert(key, now);
        self.open_sync(peer.addr(), key);
    }

    /// Takes the next renewal of this node's identity and tells the cluster.
    fn renew_self(&mut self, lost_partition: bool) {
        let id = self.swim.identity().renewed();
        if self.swim.change_identity(id.clone(), &mut self.io).is_err() {
            self.io.stats.timer_errors += 1;
            return;
        }
        self.io
            .events
            .push_back(Event::Rejoined { id, lost_partition });
    }

    /// Our side lost: tell the side (when this node decided it: `lead`),
    /// discard the view (it holds the winners down), renew, and take
    /// `winner`'s view, listening to the winner only until then.
    fn rejoin_side(&mut self, winner: NodeId, theirs: &Side, lead: bool) {
        self.io.stats.autoheal_lost += 1;
        self.heal.won = false;
        let me = self.swim.identity().clone();
        // Side-mates of an earlier rejoin not back yet are still awaited
        // (the events count them as members); the members held now join
        // them, under the identity held now.
        let mut former: BTreeMap<NameKey, NodeId> = std::mem::take(&mut self.heal.former);
        former.extend(
            self.swim
                .iter_members()
                .map(|m| (m.id().key(), m.id().clone())),
        );
        if lead {
            let follow = SyncMsg::Follow {
                from: me.clone(),
                winner: winner.clone(),
                side: theirs.clone(),
            };
            let body = postcard::to_allocvec(&follow).expect("sync messages encode");
            for mate in former.values() {
                self.io.send(Kind::Sync, mate.addr(), &body);
            }
        }
        let id = me.renewed();
        self.fresh_swim(id.clone());
        self.down = DownClock::default();
        self.heal.former = former;
        self.heal.former_until = self.io.now + FORMER_GRACE;
        self.heal.announce_all = true;
        self.heal.merging = Some(Merging {
            winner: winner.clone(),
            until: self.io.now + MERGE_BARRIER,
        });
        if self.swim.announce(winner.clone(), &mut self.io).is_err() {
            self.io.stats.timer_errors += 1;
        }
        self.open_sync(winner.addr(), winner.name().key());
        self.io.events.push_back(Event::Rejoined {
            id,
            lost_partition: true,
        });
    }

    /// A side-mate says our side lost to `winner` (whose side is
    /// `theirs`). Taken only from an active member (under the version it
    /// sent from, or a later one), only while this node is
    /// apart from the winner too, and only if the sides compare the same
    /// way here; then this node rejoins the winner without waiting to meet
    /// it.
    pub(super) fn follow(&mut self, from: &NodeId, winner: NodeId, theirs: Side) {
        if self.left || !self.config.autoheal || self.heal.merging.is_some() {
            return;
        }
        // A side-mate's announce under its renewed identity may overtake
        // its `Follow` (datagrams sent together can arrive out of order):
        // the mate counts under the version it sent from or a later one.
        let (mut mate, mut apart) = (false, true);
        for m in self.swim.iter_members() {
            mate |= m.id().name() == from.name() && m.id().version() >= from.version();
            apart &= m.id().name() != winner.name();
        }
        if !mate || !apart || winner.name() == self.swim.identity().name() {
            return;
        }
        let ours = self.side();
        if decide(&ours, &theirs, false) != Verdict::Rejoin {
            return;
        }
        if self.heal.episode.is_none() {
            self.heal.episode = Some(winner.clone());
            self.io.events.push_back(Event::PartitionDetected {
                peer: winner.clone(),
            });
        }
        self.rejoin_side(winner, &theirs, false);
    }

    /// The event for a member that came up: a former side-mate back under
    /// a renewed identity is a renewal, not a second `MemberUp`, and is
    /// reported once (foca may report it as a `Rename` and then a
    /// `MemberUp`: see `renamed_event`).
    pub(super) fn up_event(&mut self, id: NodeId) -> Option<Event> {
        let key = id.key();
        if self.heal.renewed_now.take() == Some(key) {
            return None;
        }
        match self.heal.former.remove(&key) {
            Some(old) if old.version() < id.version() => {
                Some(Event::MemberRenewed { old, new: id })
            }
            // Back under the identity this node knew before it rejoined (a
            // side-mate that renewed first, a winner not yet told apart):
            // it never stopped running here.
            Some(old) if old.version() == id.version() => None,
            _ => Some(Event::MemberUp(id)),
        }
    }

    /// The event for foca's `Rename(old, new)`: for a former side-mate, the
    /// renewal from the identity this node knew it by (foca's `old` is the
    /// down record the winner's view held).
    pub(super) fn renamed_event(&mut self, old: NodeId, new: NodeId) -> Event {
        let key = new.name().key();
        match self.heal.former.remove(&key) {
            Some(known) => {
                self.heal.renewed_now = Some(key);
                Event::MemberRenewed { old: known, new }
            }
            None => Event::MemberRenewed { old, new },
        }
    }

    /// A sync session's last records from `from` arrived.
    pub(super) fn merged_with(&mut self, from: &NodeId) {
        if self
            .heal
            .merging
            .as_ref()
            .is_some_and(|m| m.winner.name() == from.name())
        {
            self.heal.merging = None;
            if let Some(peer) = self.heal.episode.take() {
                self.io.events.push_back(Event::PartitionHealed { peer });
            }
        }
    }

    /// A member is up again (or renewed): it is no longer down. If it was
    /// held down during a partition episode, the partition has healed.
    /// Either way views are about to differ: the next sync round comes
    /// sooner.
    pub(super) fn came_back(&mut self, id: &NodeId) {
        if self.down.remove(id.key()).is_none() {
            return;
        }
        if self.down.is_empty() {
            self.heal.won = false;
        }
        self.hasten_sync();
        self.screen_after_return();
        if self.heal.merging.is_none() {
            if let Some(peer) = self.heal.episode.take() {
                self.io.events.push_back(Event::PartitionHealed { peer });
            }
        }
    }
}
