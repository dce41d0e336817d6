//! [`Node`]: one cluster member's whole protocol state, driven from outside.
//!
//! The type lives here with its inputs and outputs; its parts live beside it:
//! `io` (what foca's `Runtime` touches), `sync_session` (full-state sync),
//! `lifecycle` (leave, force-leave, autoclean), `heal` (autoheal) and
//! `transitions` (members becoming suspect or proving alive, which foca
//! does not report).

mod claims;
mod evidence;
mod heal;
mod io;
mod lifecycle;
mod reach;
mod rediscovery;
mod stale;
mod suspicion;
mod sync_session;
#[cfg(test)]
mod tests;
mod transitions;

use std::collections::VecDeque;
use std::net::SocketAddr;

use foca::{Foca, OwnedNotification, Timer};
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use super::autoclean::DownClock;
use super::config::{Config, ConfigError};
use super::event::Event;
use super::identity::{NodeId, Peer};
use super::membership::{Liveness, MemberState, Status};
use super::name::NodeName;
use super::replay::ReplayGuard;
use super::rng::SeedRng;
use super::sync::SyncStats;
use super::time::Time;
use super::tombstone::{Departure, Tombstones};
use super::wire::{DropCounts, DropReason, Envelope, Kind};

use claims::{ClaimHandler, Inbox, Outbox};
pub use evidence::Unreachable;
use heal::HealState;
use io::{Io, Wake};
use rediscovery::Rediscovery;
use sync_session::SyncState;
use transitions::{Mentions, NotingCodec, Transitions};

type Swim = Foca<NodeId, NotingCodec, SeedRng, ClaimHandler>;

/// A datagram the driver must send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transmit {
    /// Where to send it.
    pub to: SocketAddr,
    /// The sealed datagram.
    pub payload: Vec<u8>,
}

/// An imperative from the operator or the embedding program.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// Ask these nodes to let us in (announce to each). A request, not an
    /// invite: it runs on the joining node. Refused while the node is in a
    /// cluster, and always on a replicant (it joins through discovery
    /// only: [`Node::handle_discovered`]; after `Leave` it comes back by
    /// a restart); after `Leave` (or being force-left) a core node starts
    /// over with the next generation and an empty view.
    Join(Vec<Peer>),
    /// Tell the cluster we are leaving, then stop gossiping. The others show
    /// this node as left: in neither running nor stopped nodes.
    Leave,
    /// Remove the named member everywhere, for good: a tombstone keeps its
    /// generation out until autoclean, whatever gossip or sync says. If it is
    /// alive it learns it was removed and stops.
    ForceLeave(NodeName),
}

/// Why a command was refused. Every variant leaves the node's state unchanged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    /// `Join` while this node is in a cluster: it must leave first.
    #[error("this node is already in a cluster; leave it first")]
    AlreadyInCluster,
    /// `Join` on a replicant: replicants join through automatic discovery
    /// only, as in EMQX (manual clustering is for core nodes).
    #[error("this node is a replicant: replicants join through automatic discovery only")]
    ReplicantJoin,
    /// `Join` named no node other than this one.
    #[error("nothing to join: no node other than this one was named")]
    NothingToJoin,
    /// `ForceLeave` named a node this node holds no record of.
    #[error("unknown node {0}: it is not a member of this cluster")]
    UnknownNode(NodeName),
    /// `ForceLeave` named this node itself (use `Leave`).
    #[error("{0} is this node; use leave instead of force-leave")]
    ForceLeaveSelf(NodeName),
    /// The node has left the cluster (or was removed); only `Join` is taken.
    #[error("this node has left the cluster")]
    HasLeft,
    /// foca refused the operation (its message says why).
    #[error("protocol error: {0}")]
    Protocol(String),
}

/// Counters a node keeps about its traffic.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Stats {
    /// Datagrams handed to the driver to send.
    pub datagrams_sent: u64,
    /// Bytes in those datagrams, envelope included.
    pub bytes_sent: u64,
    /// Datagrams the driver delivered.
    pub datagrams_received: u64,
    /// Bytes in those datagrams.
    pub bytes_received: u64,
    /// Delivered datagrams dropped before they changed anything, by reason.
    pub dropped: DropCounts,
    /// Timer events foca reported an error for (state unchanged by each).
    pub timer_errors: u64,
    /// `Down` verdicts not taken because this node heard from the member
    /// after they could have been reached (see ALGORITHM.md, "Stale
    /// verdicts").
    pub stale_downs: u64,
    /// The full-state sync exchange (its datagrams are also in the totals).
    pub sync: SyncStats,
    /// Reports of unreachable addresses (network evidence).
    pub evidence: EvidenceStats,
    /// Lifeguard: failed probes, refutes, confirmations, local health.
    pub lifeguard: LifeguardStats,
    /// Suspicions of this node it refuted, each by raising its incarnation
    /// (however it heard of them: gossip, or a suspect told directly). Read
    /// from the messages it sends; see [`Node::incarnation`].
    pub refuted: u64,
    /// Members reported down (each [`Event::MemberDown`] polled).
    pub members_down: u64,
    /// Autoheal runs on this node that kept its side: it met another side
    /// and the rule says that side rejoins this one. Counted once until it
    /// holds nobody down again. The side that meets the evidence first
    /// decides, so a heal the losing side decided counts no win here.
    pub autoheal_won: u64,
    /// Autoheal runs on this node that lost: each time it discarded its
    /// view and rejoined the winner (by its own comparison, or following a
    /// side-mate's).
    pub autoheal_lost: u64,
    /// Names autoclean forgot: members down longer than `autoclean` and
    /// expired tombstones (each [`Event::NodeCleaned`] polled).
    pub autoclean_removed: u64,
}

/// How many members this node knows in each state (itself excluded; a
/// member that left or was removed is in none). All zero after the node
/// left.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct MemberCounts {
    /// Alive.
    pub alive: u64,
    /// Suspected: alive until the suspicion times out or is refuted.
    pub suspect: u64,
    /// Declared down and not yet forgotten (`stopped_nodes`).
    pub down: u64,
}

/// What Lifeguard saw and did (see ALGORITHM.md, "Lifeguard").
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct LifeguardStats {
    /// Probes this node started (one member pinged per probe period).
    pub probes_sent: u64,
    /// Probes of ours that failed (each a suspicion raised by this node).
    pub probes_failed: u64,
    /// Suspicions of this node it refuted (once per incarnation).
    pub refutes: u64,
    /// Claims from other nodes that brought a suspicion of ours closer.
    pub confirmations: u64,
    /// Claims not relayed because the outbox was full (a cut of many
    /// nodes makes more claims than messages can carry).
    pub claims_dropped: u64,
    /// Local health score now: 0 is healthy, 7 the worst (probes 8x slower).
    pub health: u32,
}

/// What became of the driver's reports of unreachable addresses.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct EvidenceStats {
    /// Reports that made a member suspect on the short timeout.
    pub suspected: u64,
    /// Reports about a member already suspected on evidence.
    pub repeated: u64,
    /// Reports ignored: no member at that address, a member that refuted
    /// recently, network evidence off, or the node has left.
    pub ignored: u64,
}

/// One cluster member's protocol state: SWIM (foca) behind a sealed envelope,
/// full-state sync, tombstones, autoclean and autoheal, with every timer in
/// one queue. It performs no I/O and reads no clock or OS randomness: the
/// driver feeds it and drains it.
///
/// # Call protocol
///
/// The driver (the tokio runtime, or the simulator) owns the `Node` and:
///
/// 1. feeds it inputs as they happen, passing the current time:
///    [`handle_datagram`](Self::handle_datagram) for each datagram received,
///    [`handle_timeout`](Self::handle_timeout) when the deadline from
///    [`poll_timeout`](Self::poll_timeout) has passed,
///    [`handle_command`](Self::handle_command) for operator commands, and
///    [`handle_discovered`](Self::handle_discovered) with discovery results;
/// 2. after **every** input, drains the outputs:
///    [`poll_transmit`](Self::poll_transmit) until `None` (send each datagram),
///    [`poll_event`](Self::poll_event) until `None` (report each event),
///    [`poll_discover`](Self::poll_discover) (when `true`, ask the
///    discovery strategy and hand its answer to `handle_discovered`; a new
///    node asks before its first input), and
/// 3. re-reads [`poll_timeout`](Self::poll_timeout) and sleeps until that
///    deadline or the next input, whichever comes first.
///
/// `now` must not go backwards between calls. Late timeouts are harmless: the
/// node handles every timer that is due at the `now` it is given.
pub struct Node {
    swim: Swim,
    io: Io,
    scratch: Vec<u8>,
    /// The numbers taken from each sender's stream (replay protection).
    replays: ReplayGuard,
    config: Config,
    /// Left, or removed by force-leave: stopped until an explicit `Join`.
    left: bool,
    /// Seeds the SWIM instance a rejoin after `Leave` builds.
    reseed: SeedRng,
    sync: SyncState,
    tombstones: Tombstones,
    down: DownClock,
    heal: HealState,
    clean_scheduled: bool,
    reach_scheduled: bool,
    heard: stale::Heard,
    evidence: evidence::Evidence,
    /// Suspicion claims foca's broadcast handler heard (Lifeguard).
    inbox: Inbox,
    /// Suspicion claims waiting for room in foca's broadcast backlog.
    outbox: Outbox,
    /// When the node wants seeds (see `rediscovery`).
    rediscovery: Rediscovery,
    /// Members held suspect, for the moves foca does not report.
    transitions: Transitions,
}

impl Node {
    /// Creates a node that is alone until it joins or is joined.
    ///
    /// `seed` is the node's only source of randomness (probe order, gossip
    /// targets, nonces): the agent draws it from the OS, the simulator
    /// derives it from the run's seed. It seeds [`SeedRng`], whose stream
    /// for a given seed is fixed, so one seed always makes the same choices.
    ///
    /// The node gossips `identity` with the role `config.role`, whatever
    /// role `identity` had.
    pub fn new(identity: NodeId, config: Config, seed: [u8; 32]) -> Result<Self, ConfigError> {
        config.validate()?;
        let identity = identity.with_role(config.role);
        let mut master = SeedRng::from_seed(seed);
        let mut seeds = [[0u8; 32]; 3];
        for s in &mut seeds {
            master.fill_bytes(s);
        }
        let inbox = Inbox::default();
        let mentions = Mentions::default();
        let me = identity.name().key();
        let generation = identity.generation();
        let swim = Foca::with_custom_broadcast(
            identity,
            config.foca(),
            SeedRng::from_seed(seeds[0]),
            NotingCodec::new(mentions.clone()),
            ClaimHandler::new(inbox.clone()),
        );
        Ok(Self {
            swim,
            inbox,
            outbox: Outbox::default(),
            io: Io::new(
                Envelope::new(config.cookie.as_bytes(), &config.cluster_name),
                SeedRng::from_seed(seeds[1]),
                generation,
                config.swim.probe_period,
                config.lifeguard,
                me,
                mentions,
            ),
            scratch: Vec::with_capacity(config.max_datagram_size),
            replays: ReplayGuard::default(),
            sync: SyncState::new(SeedRng::from_seed(seeds[2]), &config),
            config,
            left: false,
            reseed: master,
            tombstones: Tombstones::default(),
            down: DownClock::default(),
            heal: HealState::default(),
            clean_scheduled: false,
            reach_scheduled: false,
            heard: stale::Heard::default(),
            evidence: evidence::Evidence::default(),
            rediscovery: Rediscovery::default(),
            transitions: Transitions::default(),
        })
    }

    /// Handles one datagram received from `from`.
    ///
    /// A datagram that is too large, not sealed for this cluster and cookie,
    /// or malformed inside is dropped and counted in [`Stats::dropped`]; it
    /// changes nothing else.
    pub fn handle_datagram(&mut self, now: Time, from: SocketAddr, datagram: &[u8]) {
        let _ = from;
        self.begin(now);
        self.io.stats.datagrams_received += 1;
        self.io.stats.bytes_received += datagram.len() as u64;
        if let Err(reason) = self.receive(datagram) {
            self.io.stats.dropped.count(reason);
        }
        self.settle();
    }

    fn receive(&mut self, datagram: &[u8]) -> Result<(), DropReason> {
        if datagram.len() > self.config.max_datagram_size {
            return Err(DropReason::TooLarge);
        }
        if self.left {
            return Err(DropReason::AfterLeave);
        }
        // The opened body lives in the scratch buffer: take it out of
        // `self` while the body is handled, and put it back after.
        let mut scratch = std::mem::take(&mut self.scratch);
        let result = match self.io.envelope.open(datagram, &mut scratch) {
            // A datagram that opened is longer than its header, so it
            // has a nonce; without one it is dropped, never let through.
            Ok((kind, body)) => match Envelope::nonce_of(datagram) {
                Some(nonce) if self.replays.admit(nonce) => self.receive_opened(kind, body),
                Some(_) => Err(DropReason::Replayed),
                None => Err(DropReason::TooShort),
            },
            Err(reason) => Err(reason),
        };
        self.scratch = scratch;
        result
    }

    fn receive_opened(&mut self, kind: Kind, body: &[u8]) -> Result<(), DropReason> {
        match kind {
            Kind::Gossip => {
                // The sender, read from the header once, for whichever of
                // the checks below runs.
                let screening = self.screening();
                let wanted = screening
                    || self.heal.merging.is_some()
                    || !self.tombstones.is_empty()
                    || !self.down.is_empty();
                let sender = if wanted { heal::sender_of(body) } else { None };
                if let (true, Some(src)) = (screening, &sender) {
                    self.heard_from(src);
                    // A suspect that talks to us hears it is suspected.
                    let (now, every) = (self.io.now, self.io.tell_every);
                    self.io.suspicions.sending(src, now, every);
                }
                if self.heal.merging.is_some() {
                    let now = self.io.now;
                    if sender.as_ref().is_none_or(|id| self.heal.bars(now, id)) {
                        return Err(DropReason::Merging);
                    }
                }
                let screened =
                    sender.and_then(|src| heal::screen(&self.tombstones, &self.down, src));
                let rebuilt = if screening {
                    self.without_stale_downs(body)
                } else {
                    None
                };
                let result = self
                    .swim
                    .handle_data(rebuilt.as_deref().unwrap_or(body), &mut self.io)
                    .map_err(|e| match e {
                        foca::Error::DataFromOurselves => DropReason::FromSelf,
                        _ => DropReason::Malformed,
                    });
                if let Some(s) = screened {
                    self.act_on(s);
                }
                result
            }
            Kind::Sync => {
                let msg = super::sync::decode(body).map_err(|r| self.reject_sync(r))?;
                if self.screening() {
                    self.heard_from(msg.from());
                }
                if self.heal.bars(self.io.now, msg.from()) {
                    return Err(DropReason::Merging);
                }
                self.handle_sync(msg).map_err(|r| self.reject_sync(r))
            }
        }
    }

    /// Handles every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Time) {
        self.begin(now);
        while let Some(wake) = self.io.timers.pop_due(now) {
            match wake {
                Wake::Swim(timer) => self.swim_timer(timer),
                Wake::Sync(token) => self.sync_tick(token),
                Wake::Clean => {
                    self.clean_scheduled = false;
                    self.sweep();
                }
                Wake::Reach => self.reach_tick(),
                Wake::Evidence(id, incarnation) => self.evidence_due(id, incarnation),
                Wake::Discover(token) => self.discovery_due(token),
            }
            self.settle();
        }
        self.settle();
    }

    /// Carries out a command.
    pub fn handle_command(&mut self, now: Time, command: Command) -> Result<(), CommandError> {
        self.begin(now);
        let result = match command {
            Command::Join(peers) => self.join(peers),
            _ if self.left => Err(CommandError::HasLeft),
            Command::ForceLeave(name) => self.force_leave(name),
            Command::Leave => self.leave(),
        };
        self.settle();
        result
    }

    /// Takes the seeds a discovery strategy found (static list, DNS, etcd,
    /// Kubernetes) and announces to every one that is not this node and not
    /// already an active member (after losing a partition, to every one: the
    /// winners it holds as members have not heard its renewed identity yet).
    /// The driver calls it at start and on every rediscovery, so a cluster
    /// forms whatever order nodes start in. Ignored after `Leave`: a node
    /// that left stays out until an explicit `Join`. With autoheal off, a
    /// node that has members announces to nobody new.
    pub fn handle_discovered(&mut self, now: Time, seeds: &[Peer]) {
        self.begin(now);
        if self.left {
            return;
        }
        self.sync.seeds = seeds.to_vec();
        let alone = self.swim.num_members() == 0;
        if alone || self.config.autoheal {
            let me = self.swim.identity().name().clone();
            // Seeds are few and members many: look each seed up by key.
            let wanted: std::collections::BTreeSet<_> =
                seeds.iter().map(|p| p.name.key()).collect();
            let everyone = std::mem::take(&mut self.heal.announce_all);
            let members: std::collections::BTreeSet<_> = self
                .swim
                .iter_members()
                .map(|m| m.id().key())
                .filter(|k| !everyone && wanted.contains(k))
                .collect();
            let targets: Vec<Peer> = seeds
                .iter()
                .filter(|p| p.name != me && !members.contains(&p.name.key()))
                .cloned()
                .collect();
            if self.announce(targets.iter()).is_err() {
                self.io.stats.timer_errors += 1;
            }
            // Fetch the whole view from one seed at once: when alone, to
            // join; otherwise to meet a side we may have forgotten.
            if let Some(p) = targets.first() {
                self.open_sync(p.addr, p.name.key());
            }
        }
        self.settle();
    }

    /// Takes `members` as alive without any exchange, as if it had learned
    /// them from a join, and announces to none of them. For drivers that
    /// restore a known view (a simulator that starts a large cluster
    /// converged, an agent reloading a saved view); the failure detector then
    /// checks every one as usual. Records this node already holds are
    /// resolved by foca's precedence rules; its own name is ignored.
    pub fn restore_members(&mut self, now: Time, members: impl IntoIterator<Item = NodeId>) {
        self.begin(now);
        if self.left {
            return;
        }
        let me = self.swim.identity().name().clone();
        let mentions = self.io.mentions.clone();
        let records = members
            .into_iter()
            .filter(|id| id.name() != &me && !self.tombstones.covers(id))
            .map(foca::Member::alive)
            .inspect(|m| mentions.note(m.id(), m.incarnation(), m.state()));
        if self.swim.apply_many(records, false, &mut self.io).is_err() {
            self.io.stats.timer_errors += 1;
        }
        self.settle();
    }

    fn join(&mut self, peers: Vec<Peer>) -> Result<(), CommandError> {
        if !self.config.role.is_core() {
            return Err(CommandError::ReplicantJoin);
        }
        let me = self.swim.identity().name().clone();
        let targets: Vec<_> = peers.into_iter().filter(|p| p.name != me).collect();
        if targets.is_empty() {
            return Err(CommandError::NothingToJoin);
        }
        if !self.left && self.swim.num_members() > 0 {
            return Err(CommandError::AlreadyInCluster);
        }
        if self.left {
            self.start_over();
        }
        self.announce(targets.iter())
            .map_err(|e| CommandError::Protocol(e.to_string()))?;
        self.arm_timers();
        self.open_sync(targets[0].addr, targets[0].name.key());
        Ok(())
    }

    fn announce<'a>(&mut self, peers: impl Iterator<Item = &'a Peer>) -> Result<(), foca::Error> {
        for peer in peers {
            self.swim.announce(peer.placeholder(), &mut self.io)?;
        }
        Ok(())
    }

    /// After `Leave` or removal: a fresh SWIM instance under the next
    /// generation, with an empty view and no pending timers.
    fn start_over(&mut self) {
        let identity = self.swim.identity().next_generation();
        self.fresh_swim(identity);
        self.stop_timers();
        self.down = DownClock::default();
        self.heal = HealState::default();
        self.left = false;
        self.restart_discovery();
    }

    /// Replaces the SWIM instance with an empty one under `identity`. foca's
    /// pending timers carry the old instance's tokens and do nothing.
    fn fresh_swim(&mut self, identity: NodeId) {
        let mut seed = [0u8; 32];
        self.reseed.fill_bytes(&mut seed);
        self.swim = Foca::with_custom_broadcast(
            identity,
            self.config.foca(),
            SeedRng::from_seed(seed),
            NotingCodec::new(self.io.mentions.clone()),
            ClaimHandler::new(self.inbox.clone()),
        );
        self.transitions.clear(&self.io.mentions);
        // The old instance's timers carry tokens the new one may reuse.
        self.io
            .timers
            .retain(|w| !matches!(w, Wake::Swim(_) | Wake::Evidence(..)));
        self.io.suspicions.clear();
        self.outbox = Outbox::default();
        self.heard = stale::Heard::default();
        self.evidence = evidence::Evidence::default();
        self.heal.lowest = None;
        self.heal.cores = None;
    }

    /// Stops gossiping: no timers, no sync.
    fn stop(&mut self) {
        self.left = true;
        self.stop_timers();
        self.stop_discovery();
    }

    fn stop_timers(&mut self) {
        self.io.timers.clear();
        self.sync.scheduled = false;
        self.sync.open.clear();
        self.clean_scheduled = false;
        self.reach_scheduled = false;
    }

    /// Every input starts here: note the time, arm the periodic timers.
    fn begin(&mut self, now: Time) {
        self.io.now = now;
        self.io.members = self.swim.num_members();
        self.arm_timers();
    }

    /// One of foca's timers is due. A probe period that ends without a
    /// failed probe counts for local health (foca reports only failures:
    /// by arming its suspect-to-down timer).
    fn swim_timer(&mut self, timer: Timer<NodeId>) {
        if !self.io.suspicions.due(&timer, self.io.now) {
            return;
        }
        let judged = matches!(timer, Timer::ProbeRandomMember(_)) && self.io.probing;
        if judged {
            self.io.probing = false;
        }
        let failed = self.io.stats.lifeguard.probes_failed;
        if self.swim.handle_timer(timer, &mut self.io).is_err() {
            self.io.stats.timer_errors += 1;
        }
        if judged && self.config.lifeguard && self.io.stats.lifeguard.probes_failed == failed {
            self.io.health.probe_succeeded();
        }
    }

    fn arm_timers(&mut self) {
        if self.left {
            return;
        }
        self.schedule_sync();
        self.schedule_sweep();
        self.schedule_reach();
        self.schedule_discovery();
    }

    /// Turns what foca reported during this input into events, enforcing
    /// tombstones and keeping the down clock: a record a tombstone covers is
    /// put back down at once and never reported up.
    fn settle(&mut self) {
        while let Some(note) = self.io.notes.pop_front() {
            match note {
                OwnedNotification::MemberUp(id) => {
                    // foca's active set, buried or not: a burial's `Down`
                    // follows, unless the record was renamed to a newer
                    // identity in the same packet (a `Rename` follows).
                    self.track_cores(&id, true);
                    self.track_lowest(id.name(), true);
                    if self.tombstones.covers(&id) {
                        self.bury(&id);
                    } else {
                        self.came_back(&id);
                        if let Some(event) = self.up_event(id) {
                            self.io.events.push_back(event);
                        }
                    }
                }
                OwnedNotification::MemberDown(id) => {
                    self.transitions.forget(id.key());
                    self.track_lowest(id.name(), false);
                    self.track_cores(&id, false);
                    if !self.tombstones.covers(&id) {
                        self.down.note(id.key(), id.version(), self.io.now);
                        self.io.events.push_back(Event::MemberDown(id));
                    }
                }
                OwnedNotification::Rename(old, new) => {
                    self.track_renamed_role(&old, &new);
                    self.transitions.forget(new.name().key());
                    if self.tombstones.covers(&new) {
                        self.bury(&new);
                    } else if self.swim.iter_members().any(|m| m.id() == &new) {
                        self.came_back(&new);
                        let event = self.renamed_event(old, new);
                        self.io.events.push_back(event);
                    }
                    // Else the new identity is down: a down record renamed
                    // (foca reports no change of the active set), or an
                    // active one that went down with it (a `MemberDown`
                    // follows). Either way nobody came back.
                }
                OwnedNotification::Active => self.io.events.push_back(Event::Joined),
                OwnedNotification::Idle => self.io.events.push_back(Event::Alone),
                OwnedNotification::Rejoin(id) => self.renewed_by_foca(id),
                OwnedNotification::Defunct => {}
            }
        }
        if !self.left {
            self.exchange_claims();
            self.tell_suspects();
            self.schedule_reach();
        }
        self.follow_transitions();
        self.watch_alone();
        // Refutes and failed probes move the score between timers.
        self.io.stats.lifeguard.health = self.io.health.score();
    }

    /// The next datagram to send, if any.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        let next = self.io.transmits.pop_front();
        if next.is_none() {
            self.io.trim();
        }
        next
    }

    /// The next event to report, if any.
    pub fn poll_event(&mut self) -> Option<Event> {
        let next = self.io.events.pop_front();
        match &next {
            None => self.io.trim(),
            Some(Event::MemberDown(_)) => self.io.stats.members_down += 1,
            Some(Event::NodeCleaned(_)) => self.io.stats.autoclean_removed += 1,
            Some(_) => {}
        }
        next
    }

    /// When [`handle_timeout`](Self::handle_timeout) is next due, if ever.
    pub fn poll_timeout(&self) -> Option<Time> {
        self.io.timers.next_deadline()
    }

    /// This node's current identity.
    pub fn identity(&self) -> &NodeId {
        self.swim.identity()
    }

    /// The active members (alive or suspect), this node excluded.
    pub fn members(&self) -> impl Iterator<Item = &NodeId> {
        self.swim.iter_members().map(|m| m.id())
    }

    /// How many active members this node knows, itself excluded.
    pub fn num_members(&self) -> usize {
        self.swim.num_members()
    }

    /// How many former side-mates this node, having lost a partition,
    /// still waits for. Its events count them as members (each comes back
    /// as `MemberRenewed`, or unchanged, or is reported `MemberDown` after
    /// a grace of 10 s), while [`num_members`](Self::num_members) does not
    /// until they are back.
    pub fn awaited_side_mates(&self) -> usize {
        self.heal.former.len()
    }

    /// Every member this node holds a record of, down ones included (and
    /// down records of departed nodes, which [`status`](Self::status) hides).
    pub fn membership(&self) -> impl Iterator<Item = &foca::Member<NodeId>> {
        self.records()
    }

    /// foca's records, less any of this node's own name: after a renewal foca
    /// keeps the previous identity as a down record, which is not a member.
    fn records(&self) -> impl Iterator<Item = &foca::Member<NodeId>> {
        let me = self.swim.identity().key();
        self.swim
            .iter_membership_state()
            .filter(move |m| m.id().key() != me)
    }

    /// How many member records this node holds, in constant time: the
    /// length of [`membership`](Self::membership), plus any earlier identity
    /// of this node foca still keeps (until the next autoclean sweep).
    pub fn num_records(&self) -> usize {
        self.swim.iter_membership_state().len()
    }

    /// How many tombstones (departed nodes) this node holds.
    pub fn num_tombstones(&self) -> usize {
        self.tombstones.len()
    }

    /// Running and stopped nodes as this node sees them. Departed nodes
    /// (left or force-left) are in neither list. A node that has left (or
    /// was removed) is alone until it joins again, as in EMQX: it lists
    /// only itself, whatever records it still holds.
    ///
    /// Each listed node's role comes with it, and the status says when no
    /// running node is a core node ([`Status::no_core_running`]).
    pub fn status(&self) -> Status {
        let me = self.identity();
        Status::new(
            (me.name().clone(), me.role()),
            self.listed().map(|m| {
                let id = m.id();
                (id.name().clone(), id.role(), m.state() != foca::State::Down)
            }),
        )
    }

    /// Every node [`status`](Self::status) lists, with its identity and
    /// state, sorted by name: this node (always alive) and each member.
    /// `down_since` is when a down member went down, on
    /// this node's clock: the earliest any node reported, as autoclean
    /// counts it (`None` for active members, and for down records autoclean
    /// has not dated yet).
    pub fn member_states(&self) -> Vec<MemberState> {
        let mut list: Vec<MemberState> = std::iter::once(MemberState {
            id: self.identity().clone(),
            liveness: Liveness::Alive,
            down_since: None,
        })
        .chain(self.listed().map(|m| {
            let liveness = Liveness::from(m.state());
            let down_since = match liveness {
                Liveness::Down => self
                    .down
                    .get(m.id().key())
                    .filter(|d| d.version == m.id().version())
                    .map(|d| d.since),
                _ => None,
            };
            MemberState {
                id: m.id().clone(),
                liveness,
                down_since,
            }
        }))
        .collect();
        list.sort_by(|a, b| a.id.name().cmp(b.id.name()));
        list
    }

    /// The records `status` lists: none after leaving, and never a
    /// departed node's.
    fn listed(&self) -> impl Iterator<Item = &foca::Member<NodeId>> {
        self.membership()
            .filter(move |m| !self.left && !self.tombstones.covers(m.id()))
    }

    /// Whether a tombstone keeps `name` out of the cluster, and how.
    pub fn departure(&self, name: &NodeName) -> Option<Departure> {
        self.tombstones.get(name).map(|t| t.kind)
    }

    /// Traffic counters.
    pub fn stats(&self) -> &Stats {
        &self.io.stats
    }

    /// This node's SWIM incarnation: 0 under a new identity, raised by
    /// each refutation of a suspicion of it. As of the last message it
    /// sent (foca keeps the number to itself; every message carries it).
    pub fn incarnation(&self) -> foca::Incarnation {
        self.io.incarnation(self.swim.identity().version())
    }

    /// How many members are alive, suspect and down, as
    /// [`status`](Self::status) counts them (departed nodes in none). It
    /// reads every record: for a scrape, not for every input.
    pub fn member_counts(&self) -> MemberCounts {
        let mut counts = MemberCounts::default();
        if self.left {
            return counts;
        }
        for m in self.membership() {
            if self.tombstones.covers(m.id()) {
                continue;
            }
            *match m.state() {
                foca::State::Alive => &mut counts.alive,
                foca::State::Suspect => &mut counts.suspect,
                foca::State::Down => &mut counts.down,
            } += 1;
        }
        counts
    }

    /// The configuration the node runs with.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Whether this node has left the cluster or was removed from it.
    pub fn has_left(&self) -> bool {
        self.left
    }
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("identity", self.identity())
            .field("members", &self.num_members())
            .field("left", &self.left)
            .finish_non_exhaustive()
    }
}

/// Pending events, for the parts of `Node` that emit them directly.
type Events = VecDeque<Event>;
