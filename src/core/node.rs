//! [`Node`]: one cluster member's whole protocol state, driven from outside.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Duration;

use foca::{Foca, NoCustomBroadcast, Notification, PostcardCodec, Runtime, Timer};
use rand::rngs::StdRng;
use rand::{Rng, RngExt, SeedableRng};

use super::config::{Config, ConfigError};
use super::event::Event;
use super::identity::{NodeId, Peer};
use super::membership::Status;
use super::name::NameKey;
use super::name::NodeName;
use super::sync::{self, SyncMsg, SyncReject, SyncStats};
use super::time::Time;
use super::timers::TimerQueue;
use super::wire::{DropCounts, DropReason, Envelope, Kind};

type Swim = Foca<NodeId, PostcardCodec, StdRng, NoCustomBroadcast>;

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
    /// cluster; after `Leave` it rejoins with a renewed identity and an empty
    /// view.
    Join(Vec<Peer>),
    /// Tell the cluster we are leaving, then stop gossiping.
    Leave,
    /// Declare the named member down everywhere (usually a dead node that
    /// should not wait for the failure detector).
    ForceLeave(NodeName),
}

/// Why a command was refused. Every variant leaves the node's state unchanged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    /// `Join` while this node is in a cluster: it must leave first.
    #[error("this node is already in a cluster; leave it first")]
    AlreadyInCluster,
    /// `Join` named no node other than this one.
    #[error("nothing to join: no node other than this one was named")]
    NothingToJoin,
    /// `ForceLeave` named a node this node holds no record of.
    #[error("unknown node {0}: it is not a member of this cluster")]
    UnknownNode(NodeName),
    /// `ForceLeave` named this node itself (use `Leave`).
    #[error("{0} is this node; use leave instead of force-leave")]
    ForceLeaveSelf(NodeName),
    /// The node has left the cluster; it takes no further commands.
    #[error("this node has left the cluster")]
    HasLeft,
    /// foca refused the operation (its message says why).
    #[error("protocol error: {0}")]
    Protocol(String),
}

/// Counters a node keeps about its traffic.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
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
    /// The full-state sync exchange (its datagrams are also in the totals).
    pub sync: SyncStats,
}

/// One cluster member's protocol state: SWIM (foca) behind a sealed envelope,
/// with every timer in one queue. It performs no I/O and reads no clock or
/// OS randomness: the driver feeds it and drains it.
///
/// # Call protocol
///
/// The driver (the tokio runtime, or the simulator) owns the `Node` and:
///
/// 1. feeds it inputs as they happen, passing the current time:
///    [`handle_datagram`](Self::handle_datagram) for each datagram received,
///    [`handle_timeout`](Self::handle_timeout) when the deadline from
///    [`poll_timeout`](Self::poll_timeout) has passed, and
///    [`handle_command`](Self::handle_command) for operator commands;
/// 2. after **every** input, drains the outputs:
///    [`poll_transmit`](Self::poll_transmit) until `None` (send each datagram),
///    [`poll_event`](Self::poll_event) until `None` (report each event), and
/// 3. re-reads [`poll_timeout`](Self::poll_timeout) and sleeps until that
///    deadline or the next input, whichever comes first.
///
/// `now` must not go backwards between calls. Late timeouts are harmless: the
/// node handles every timer that is due at the `now` it is given.
pub struct Node {
    swim: Swim,
    io: Io,
    scratch: Vec<u8>,
    config: Config,
    left: bool,
    /// Seeds the SWIM instance a rejoin after `Leave` builds.
    reseed: StdRng,
    sync: SyncState,
}

/// A node's side of the full-state sync (see [`sync`]).
struct SyncState {
    rng: StdRng,
    next_session: u32,
    /// The session this node opened and awaits a digest for: (session, peer).
    open: Option<(u32, NameKey)>,
    /// Sessions whose `want` this node answered: (peer, session), newest last.
    answered: VecDeque<(NameKey, u32)>,
    interval: Duration,
    /// A difference was seen since the last tick (as opener or answerer).
    unsettled: bool,
    scheduled: bool,
    /// The last seeds discovery reported: sync partners when alone.
    seeds: Vec<Peer>,
}

/// What a deadline in the timer queue is for.
#[derive(Debug)]
enum Wake {
    Swim(Timer<NodeId>),
    Sync,
}

/// Everything foca's `Runtime` touches, apart from foca itself.
struct Io {
    now: Time,
    timers: TimerQueue<Wake>,
    envelope: Envelope,
    nonce_rng: StdRng,
    transmits: VecDeque<Transmit>,
    events: VecDeque<Event>,
    stats: Stats,
}

impl Runtime<NodeId> for Io {
    fn notify(&mut self, notification: Notification<'_, NodeId>) {
        let event = match notification {
            Notification::MemberUp(id) => Event::MemberUp(id.clone()),
            Notification::MemberDown(id) => Event::MemberDown(id.clone()),
            Notification::Rename(old, new) => Event::MemberRenewed {
                old: old.clone(),
                new: new.clone(),
            },
            Notification::Active => Event::Joined,
            Notification::Idle => Event::Alone,
            Notification::Rejoin(id) => Event::SelfRenewed(id.clone()),
            // Our identity renews itself, so foca never goes defunct.
            Notification::Defunct => return,
        };
        self.events.push_back(event);
    }

    fn send_to(&mut self, to: NodeId, data: &[u8]) {
        self.send(Kind::Gossip, to.addr(), data);
    }

    fn submit_after(&mut self, event: Timer<NodeId>, after: Duration) {
        self.timers.push(self.now + after, Wake::Swim(event));
    }
}

impl Io {
    fn send(&mut self, kind: Kind, to: SocketAddr, body: &[u8]) {
        let payload = self.envelope.seal(kind, body, &mut self.nonce_rng);
        self.stats.datagrams_sent += 1;
        self.stats.bytes_sent += payload.len() as u64;
        if kind == Kind::Sync {
            self.stats.sync.datagrams_sent += 1;
            self.stats.sync.bytes_sent += payload.len() as u64;
        }
        self.transmits.push_back(Transmit { to, payload });
    }
}

impl Node {
    /// Creates a node that is alone until it joins or is joined.
    ///
    /// `seed` is the node's only source of randomness (probe order, gossip
    /// targets, nonces): the agent draws it from the OS, the simulator
    /// derives it from the run's seed.
    pub fn new(identity: NodeId, config: Config, seed: [u8; 32]) -> Result<Self, ConfigError> {
        config.validate()?;
        let mut master = StdRng::from_seed(seed);
        let mut s1 = [0u8; 32];
        let mut s2 = [0u8; 32];
        let mut s3 = [0u8; 32];
        master.fill_bytes(&mut s1);
        master.fill_bytes(&mut s2);
        master.fill_bytes(&mut s3);
        let swim = Foca::new(
            identity,
            config.foca(),
            StdRng::from_seed(s1),
            PostcardCodec,
        );
        Ok(Self {
            swim,
            io: Io {
                now: Time::ZERO,
                timers: TimerQueue::default(),
                envelope: Envelope::new(config.cookie.as_bytes(), &config.cluster_name),
                nonce_rng: StdRng::from_seed(s2),
                transmits: VecDeque::new(),
                events: VecDeque::new(),
                stats: Stats::default(),
            },
            scratch: Vec::with_capacity(config.max_datagram_size),
            sync: SyncState {
                rng: StdRng::from_seed(s3),
                next_session: 0,
                open: None,
                answered: VecDeque::new(),
                interval: config.sync.map(|s| s.min_interval).unwrap_or_default(),
                unsettled: true,
                scheduled: false,
                seeds: Vec::new(),
            },
            config,
            left: false,
            reseed: master,
        })
    }

    /// Handles one datagram received from `from`.
    ///
    /// A datagram that is too large, not sealed for this cluster and cookie,
    /// or malformed inside is dropped and counted in [`Stats::dropped`]; it
    /// changes nothing else.
    pub fn handle_datagram(&mut self, now: Time, from: SocketAddr, datagram: &[u8]) {
        let _ = from;
        self.io.now = now;
        self.schedule_sync();
        self.io.stats.datagrams_received += 1;
        self.io.stats.bytes_received += datagram.len() as u64;
        if let Err(reason) = self.receive(datagram) {
            self.io.stats.dropped.count(reason);
        }
    }

    fn receive(&mut self, datagram: &[u8]) -> Result<(), DropReason> {
        if datagram.len() > self.config.max_datagram_size {
            return Err(DropReason::TooLarge);
        }
        if self.left {
            return Err(DropReason::AfterLeave);
        }
        let (kind, body) = self.io.envelope.open(datagram, &mut self.scratch)?;
        match kind {
            Kind::Gossip => self
                .swim
                .handle_data(body, &mut self.io)
                .map_err(|e| match e {
                    foca::Error::DataFromOurselves => DropReason::FromSelf,
                    _ => DropReason::Malformed,
                }),
            Kind::Sync => {
                let msg = sync::decode(body).map_err(|r| self.reject_sync(r))?;
                self.handle_sync(msg).map_err(|r| self.reject_sync(r))
            }
        }
    }

    fn reject_sync(&mut self, reason: SyncReject) -> DropReason {
        self.io.stats.sync.count(reason);
        match reason {
            SyncReject::Malformed => DropReason::Malformed,
            _ => DropReason::SyncRejected,
        }
    }

    /// This node's view as sync sees it: itself (alive) and every record.
    fn digest(&self) -> [u64; sync::BUCKETS] {
        let me = std::iter::once((self.swim.identity(), false));
        let others = self
            .swim
            .iter_membership_state()
            .map(|m| (m.id(), m.state() == foca::State::Down));
        sync::digest(me.chain(others))
    }

    /// This node's records in the buckets of `want`, itself included.
    fn records_in(&self, want: u64) -> Vec<sync::Record> {
        let wanted = |id: &NodeId| want & (1 << sync::bucket_of(id.name())) != 0;
        let me = self.swim.identity();
        let mut out: Vec<_> = self
            .swim
            .iter_membership_state()
            .filter(|m| wanted(m.id()))
            .cloned()
            .collect();
        if wanted(me) {
            out.push(foca::Member::alive(me.clone()));
        }
        out
    }

    fn max_sync_body(&self) -> usize {
        self.config.max_datagram_size - super::wire::OVERHEAD
    }

    fn send_sync(&mut self, to: SocketAddr, msg: &SyncMsg) {
        let body = postcard::to_allocvec(msg).expect("sync messages encode");
        self.io.send(Kind::Sync, to, &body);
    }

    fn send_records(
        &mut self,
        to: SocketAddr,
        session: u32,
        want: u64,
        records: Vec<sync::Record>,
    ) {
        self.io.stats.sync.records_sent += records.len() as u64;
        let me = self.swim.identity().clone();
        let max = self.max_sync_body();
        for body in sync::members_messages(session, &me, want, records.into_iter(), max) {
            self.io.send(Kind::Sync, to, &body);
        }
    }

    fn handle_sync(&mut self, msg: SyncMsg) -> Result<(), SyncReject> {
        let me = self.swim.identity().clone();
        match msg {
            SyncMsg::Summary {
                session,
                from,
                hash,
                ..
            } => {
                let mine = self.digest();
                if sync::summary_hash(&mine) == hash {
                    self.io.stats.sync.summaries_equal += 1;
                } else {
                    self.io.stats.sync.summaries_differ += 1;
                    self.sync.unsettled = true;
                    let reply = SyncMsg::Digest {
                        session,
                        from: me,
                        buckets: mine.to_vec(),
                    };
                    self.send_sync(from.addr(), &reply);
                }
                Ok(())
            }
            SyncMsg::Digest {
                session,
                from,
                buckets,
            } => {
                if self.sync.open != Some((session, from.name().key())) {
                    return Err(SyncReject::Unsolicited);
                }
                let diff = sync::differing(&self.digest(), &buckets);
                if diff != 0 {
                    self.sync.unsettled = true;
                    let records = self.records_in(diff);
                    self.send_records(from.addr(), session, diff, records);
                }
                Ok(())
            }
            SyncMsg::Members {
                session,
                from,
                want,
                members,
            } => {
                self.io.stats.sync.records_received += members.len() as u64;
                // foca's precedence rules decide every record: see ARCHITECTURE.md.
                if self
                    .swim
                    .apply_many(members.into_iter(), false, &mut self.io)
                    .is_err()
                {
                    return Err(SyncReject::Malformed);
                }
                let key = (from.name().key(), session);
                if want != 0 && !self.sync.answered.contains(&key) {
                    if self.sync.answered.len() >= 64 {
                        self.sync.answered.pop_front();
                    }
                    self.sync.answered.push_back(key);
                    let records = self.records_in(want);
                    self.send_records(from.addr(), session, 0, records);
                }
                Ok(())
            }
        }
    }

    /// Opens a sync session with `to`.
    fn open_sync(&mut self, to: SocketAddr, key: NameKey) {
        if self.config.sync.is_none() {
            return;
        }
        let session = self.sync.next_session;
        self.sync.next_session = session.wrapping_add(1);
        self.sync.open = Some((session, key));
        self.io.stats.sync.sessions_started += 1;
        let digest = self.digest();
        let msg = SyncMsg::Summary {
            session,
            from: self.swim.identity().clone(),
            count: u32::try_from(self.swim.iter_membership_state().len() + 1).unwrap_or(u32::MAX),
            hash: sync::summary_hash(&digest),
        };
        self.send_sync(to, &msg);
    }

    /// Arms the periodic sync timer once the node has a notion of `now`.
    fn schedule_sync(&mut self) {
        if self.sync.scheduled || self.config.sync.is_none() || self.left {
            return;
        }
        self.sync.scheduled = true;
        let delay = self.jittered(self.sync.interval);
        self.io.timers.push(self.io.now + delay, Wake::Sync);
    }

    fn jittered(&mut self, d: Duration) -> Duration {
        d.mul_f64(self.sync.rng.random_range(0.75..1.25))
    }

    /// The periodic sync tick: adapt the interval, pick a partner, open a
    /// session, re-arm.
    fn sync_tick(&mut self) {
        let Some(cfg) = self.config.sync else { return };
        self.sync.interval = if self.sync.unsettled {
            cfg.min_interval
        } else {
            (self.sync.interval * 2).min(cfg.max_interval)
        };
        self.sync.unsettled = false;
        if let Some((to, key)) = self.pick_sync_partner() {
            self.open_sync(to, key);
        }
        self.sync.scheduled = false;
        self.schedule_sync();
    }

    /// A random active member; now and then (1 in 8) a member held down, so
    /// sides of a healed partition find each other; when alone, a member held
    /// down or a discovered seed.
    fn pick_sync_partner(&mut self) -> Option<(SocketAddr, NameKey)> {
        let down: Vec<&NodeId> = self
            .swim
            .iter_membership_state()
            .filter(|m| m.state() == foca::State::Down)
            .map(|m| m.id())
            .collect();
        let active = self.swim.num_members();
        let try_down = !down.is_empty() && (active == 0 || self.sync.rng.random_range(0..8) == 0);
        if try_down {
            let id = down[self.sync.rng.random_range(0..down.len())];
            return Some((id.addr(), id.name().key()));
        }
        if active > 0 {
            let i = self.sync.rng.random_range(0..active);
            let id = self.swim.iter_members().nth(i).map(|m| m.id())?;
            return Some((id.addr(), id.name().key()));
        }
        let me = self.swim.identity().name().clone();
        let seeds: Vec<&Peer> = self.sync.seeds.iter().filter(|p| p.name != me).collect();
        if seeds.is_empty() {
            return None;
        }
        let p = seeds[self.sync.rng.random_range(0..seeds.len())];
        Some((p.addr, p.name.key()))
    }

    /// Handles every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Time) {
        self.io.now = now;
        self.schedule_sync();
        while let Some(wake) = self.io.timers.pop_due(now) {
            match wake {
                Wake::Swim(timer) => {
                    if self.swim.handle_timer(timer, &mut self.io).is_err() {
                        self.io.stats.timer_errors += 1;
                    }
                }
                Wake::Sync => self.sync_tick(),
            }
        }
    }

    /// Carries out a command.
    pub fn handle_command(&mut self, now: Time, command: Command) -> Result<(), CommandError> {
        self.io.now = now;
        match command {
            Command::Join(peers) => {
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
                // Fetch the whole view from the first target at once.
                self.schedule_sync();
                self.open_sync(targets[0].addr, targets[0].name.key());
                Ok(())
            }
            _ if self.left => Err(CommandError::HasLeft),
            Command::ForceLeave(name) => {
                if &name == self.swim.identity().name() {
                    return Err(CommandError::ForceLeaveSelf(name));
                }
                let member = self
                    .swim
                    .iter_membership_state()
                    .find(|m| m.id().name() == &name)
                    .cloned()
                    .ok_or(CommandError::UnknownNode(name))?;
                let down =
                    foca::Member::new(member.id().clone(), member.incarnation(), foca::State::Down);
                self.swim
                    .apply_many(std::iter::once(down), true, &mut self.io)
                    .map_err(|e| CommandError::Protocol(e.to_string()))
            }
            Command::Leave => {
                self.swim
                    .leave_cluster(&mut self.io)
                    .map_err(|e| CommandError::Protocol(e.to_string()))?;
                self.left = true;
                self.io.timers.clear();
                self.sync.scheduled = false;
                Ok(())
            }
        }
    }

    /// Takes the seeds a discovery strategy found (static list, DNS, etcd,
    /// Kubernetes) and announces to every one that is not this node and not
    /// already an active member. The driver calls it at start and on every
    /// rediscovery, so a cluster forms whatever order nodes start in. Ignored
    /// after `Leave`: a node that left stays out until an explicit `Join`.
    pub fn handle_discovered(&mut self, now: Time, seeds: &[Peer]) {
        self.io.now = now;
        if self.left {
            return;
        }
        self.sync.seeds = seeds.to_vec();
        self.schedule_sync();
        let me = self.swim.identity().name().clone();
        let members: std::collections::BTreeSet<&NodeName> =
            self.swim.iter_members().map(|m| m.id().name()).collect();
        let targets: Vec<Peer> = seeds
            .iter()
            .filter(|p| p.name != me && !members.contains(&p.name))
            .cloned()
            .collect();
        if self.announce(targets.iter()).is_err() {
            self.io.stats.timer_errors += 1;
        }
        // Alone: fetch the whole view from one seed at once.
        if self.swim.num_members() == 0 {
            if let Some(p) = targets.first() {
                self.open_sync(p.addr, p.name.key());
            }
        }
    }

    fn announce<'a>(&mut self, peers: impl Iterator<Item = &'a Peer>) -> Result<(), foca::Error> {
        for peer in peers {
            self.swim.announce(peer.placeholder(), &mut self.io)?;
        }
        Ok(())
    }

    /// After `Leave`: a fresh SWIM instance under a renewed identity, with an
    /// empty view and no pending timers.
    fn start_over(&mut self) {
        let identity = self.swim.identity().renewed();
        let mut seed = [0u8; 32];
        self.reseed.fill_bytes(&mut seed);
        self.swim = Foca::new(
            identity,
            self.config.foca(),
            StdRng::from_seed(seed),
            PostcardCodec,
        );
        self.io.timers.clear();
        self.sync.scheduled = false;
        self.sync.open = None;
        self.left = false;
    }

    /// The next datagram to send, if any.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.io.transmits.pop_front()
    }

    /// The next event to report, if any.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.io.events.pop_front()
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

    /// Every member this node holds a record of, down ones included.
    pub fn membership(&self) -> impl Iterator<Item = &foca::Member<NodeId>> {
        self.swim.iter_membership_state()
    }

    /// Running and stopped nodes as this node sees them.
    pub fn status(&self) -> Status {
        Status::new(
            self.identity().name().clone(),
            self.membership()
                .map(|m| (m.id().name().clone(), m.state() != foca::State::Down)),
        )
    }

    /// Traffic counters.
    pub fn stats(&self) -> &Stats {
        &self.io.stats
    }

    /// The configuration the node runs with.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Whether this node has left the cluster.
    pub fn has_left(&self) -> bool {
        self.left
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(i: u8) -> Node {
        let name: NodeName = format!("rc{i}@127.0.0.1").parse().unwrap();
        let addr = SocketAddr::from(([127, 0, 0, 1], 4370 + u16::from(i)));
        Node::new(NodeId::new(name, addr, 1), Config::lan(3), [i; 32]).unwrap()
    }

    fn peer(n: &Node) -> Peer {
        Peer::new(n.identity().name().clone(), n.identity().addr())
    }

    #[test]
    fn a_new_node_is_alone_and_sends_nothing() {
        let mut a = node(1);
        assert_eq!(a.num_members(), 0);
        assert_eq!(a.poll_transmit(), None);
        assert_eq!(a.poll_event(), None);
    }

    #[test]
    fn join_sends_a_sealed_announce_to_the_peer_address() {
        let mut a = node(1);
        let b = node(2);
        a.handle_command(Time::ZERO, Command::Join(vec![peer(&b)]))
            .unwrap();
        let t = a.poll_transmit().unwrap();
        assert_eq!(t.to, b.identity().addr());
        assert_eq!(t.payload[0], crate::core::wire::WIRE_VERSION);
        // The announce, and the summary that opens the join's sync round.
        assert_eq!(a.stats().datagrams_sent, 2);
        assert_eq!(a.stats().sync.datagrams_sent, 1);
    }

    #[test]
    fn joining_only_yourself_is_refused_without_sending() {
        let mut a = node(1);
        let me = peer(&a);
        assert_eq!(
            a.handle_command(Time::ZERO, Command::Join(vec![me])),
            Err(CommandError::NothingToJoin)
        );
        assert_eq!(a.poll_transmit(), None);
    }

    #[test]
    fn two_nodes_see_each_other_after_one_exchange() {
        let (mut a, mut b) = (node(1), node(2));
        a.handle_command(Time::ZERO, Command::Join(vec![peer(&b)]))
            .unwrap();
        let from_a = a.identity().addr();
        let t = a.poll_transmit().unwrap();
        b.handle_datagram(Time::ZERO, from_a, &t.payload);
        assert_eq!(b.poll_event(), Some(Event::MemberUp(a.identity().clone())));
        let reply = b.poll_transmit().unwrap();
        a.handle_datagram(Time::ZERO, b.identity().addr(), &reply.payload);
        assert_eq!(a.num_members(), 1);
        assert_eq!(b.num_members(), 1);
        assert!(a.poll_timeout().is_some());
    }

    #[test]
    fn a_datagram_sealed_with_another_cookie_is_counted_and_never_decoded() {
        let mut a = node(1);
        let mut other = {
            let name: NodeName = "x@127.0.0.9".parse().unwrap();
            let cfg =
                Config::lan(3).with_cluster("rollcall", crate::core::config::Cookie::new("other"));
            Node::new(
                NodeId::new(name, "127.0.0.9:4370".parse().unwrap(), 1),
                cfg,
                [9; 32],
            )
            .unwrap()
        };
        other
            .handle_command(Time::ZERO, Command::Join(vec![peer(&a)]))
            .unwrap();
        let t = other.poll_transmit().unwrap();
        a.handle_datagram(Time::ZERO, other.identity().addr(), &t.payload);
        assert_eq!(a.stats().dropped.bad_seal, 1);
        assert_eq!(a.stats().dropped.malformed, 0);
        assert_eq!(a.num_members(), 0);
        assert_eq!(a.poll_event(), None);
    }

    #[test]
    fn after_leave_the_node_refuses_commands_and_drops_datagrams() {
        let (mut a, mut b) = (node(1), node(2));
        a.handle_command(Time::ZERO, Command::Join(vec![peer(&b)]))
            .unwrap();
        let t = a.poll_transmit().unwrap();
        b.handle_datagram(Time::ZERO, a.identity().addr(), &t.payload);
        b.handle_command(Time::ZERO, Command::Leave).unwrap();
        assert!(b.has_left());
        assert_eq!(b.poll_timeout(), None);
        assert_eq!(
            b.handle_command(Time::ZERO, Command::Leave),
            Err(CommandError::HasLeft)
        );
        b.handle_datagram(Time::ZERO, a.identity().addr(), &t.payload);
        assert_eq!(b.stats().dropped.after_leave, 1);
        while b.poll_transmit().is_some() {}
        b.handle_discovered(Time::ZERO, &[peer(&a)]);
        assert_eq!(
            b.poll_transmit(),
            None,
            "a node that left must not rediscover"
        );
    }

    #[test]
    fn join_after_leave_rejoins_with_a_renewed_identity_and_an_empty_view() {
        let (mut a, mut b) = (node(1), node(2));
        a.handle_command(Time::ZERO, Command::Join(vec![peer(&b)]))
            .unwrap();
        let t = a.poll_transmit().unwrap();
        b.handle_datagram(Time::ZERO, a.identity().addr(), &t.payload);
        b.handle_command(Time::ZERO, Command::Leave).unwrap();
        while b.poll_transmit().is_some() {}
        let before = b.identity().generation();
        b.handle_command(Time::ZERO, Command::Join(vec![peer(&a)]))
            .unwrap();
        assert!(!b.has_left());
        assert_eq!(b.identity().generation(), before + 1);
        assert_eq!(b.membership().count(), 0);
        assert_eq!(b.poll_transmit().unwrap().to, a.identity().addr());
    }

    #[test]
    fn join_while_in_a_cluster_is_refused() {
        let (mut a, mut b) = (node(1), node(2));
        a.handle_command(Time::ZERO, Command::Join(vec![peer(&b)]))
            .unwrap();
        let t = a.poll_transmit().unwrap();
        b.handle_datagram(Time::ZERO, a.identity().addr(), &t.payload);
        let c = node(3);
        assert_eq!(
            b.handle_command(Time::ZERO, Command::Join(vec![peer(&c)])),
            Err(CommandError::AlreadyInCluster)
        );
    }

    #[test]
    fn discovered_seeds_are_announced_to_unless_already_members() {
        let (mut a, mut b) = (node(1), node(2));
        let c = node(3);
        a.handle_command(Time::ZERO, Command::Join(vec![peer(&b)]))
            .unwrap();
        let t = a.poll_transmit().unwrap();
        b.handle_datagram(Time::ZERO, a.identity().addr(), &t.payload);
        while b.poll_transmit().is_some() {}
        b.handle_discovered(Time::ZERO, &[peer(&a), peer(&b), peer(&c)]);
        let sent: Vec<_> = std::iter::from_fn(|| b.poll_transmit())
            .map(|t| t.to)
            .collect();
        assert_eq!(sent, [c.identity().addr()]);
    }
}

#[cfg(test)]
mod force_leave_tests {
    use super::*;

    fn pair() -> (Node, Node) {
        let mk = |i: u8| {
            let name: NodeName = format!("rc{i}@127.0.0.1").parse().unwrap();
            let addr = SocketAddr::from(([127, 0, 0, 1], 4370 + u16::from(i)));
            Node::new(NodeId::new(name, addr, 1), Config::lan(3), [i; 32]).unwrap()
        };
        let (mut a, mut b) = (mk(1), mk(2));
        let pb = Peer::new(b.identity().name().clone(), b.identity().addr());
        a.handle_command(Time::ZERO, Command::Join(vec![pb]))
            .unwrap();
        let t = a.poll_transmit().unwrap();
        b.handle_datagram(Time::ZERO, a.identity().addr(), &t.payload);
        (a, b)
    }

    #[test]
    fn force_leave_moves_a_member_from_running_to_stopped() {
        let (a, mut b) = pair();
        assert_eq!(b.status().running_nodes.len(), 2);
        b.handle_command(Time::ZERO, Command::ForceLeave(a.identity().name().clone()))
            .unwrap();
        let s = b.status();
        assert_eq!(s.running_nodes, [b.identity().name().clone()]);
        assert_eq!(s.stopped_nodes, [a.identity().name().clone()]);
    }

    #[test]
    fn force_leave_of_an_unknown_node_or_of_oneself_is_refused() {
        let (_a, mut b) = pair();
        let stranger: NodeName = "nobody@127.0.0.9".parse().unwrap();
        assert_eq!(
            b.handle_command(Time::ZERO, Command::ForceLeave(stranger.clone())),
            Err(CommandError::UnknownNode(stranger))
        );
        let me = b.identity().name().clone();
        assert_eq!(
            b.handle_command(Time::ZERO, Command::ForceLeave(me.clone())),
            Err(CommandError::ForceLeaveSelf(me))
        );
        assert_eq!(b.status().running_nodes.len(), 2);
    }
}

#[cfg(test)]
mod sync_tests {
    use super::*;
    use crate::core::sync::SyncMsg;

    fn node(i: u8) -> Node {
        let name: NodeName = format!("rc{i}@127.0.0.1").parse().unwrap();
        let addr = SocketAddr::from(([127, 0, 0, 1], 4370 + u16::from(i)));
        Node::new(NodeId::new(name, addr, 1), Config::lan(3), [i; 32]).unwrap()
    }

    fn deliver(to: &mut Node, from: &mut Node) {
        while let Some(t) = from.poll_transmit() {
            if t.to == to.identity().addr() {
                to.handle_datagram(Time::ZERO, from.identity().addr(), &t.payload);
            }
        }
    }

    /// Seals `members` as a sync `Members` message from `from`.
    fn members_from(from: &Node, members: Vec<sync::Record>) -> Vec<u8> {
        let msg = SyncMsg::Members {
            session: 1,
            from: from.identity().clone(),
            want: 0,
            members,
        };
        let c = Config::lan(3);
        let env = Envelope::new(c.cookie.as_bytes(), &c.cluster_name);
        let body = postcard::to_allocvec(&msg).unwrap();
        env.seal(Kind::Sync, &body, &mut StdRng::seed_from_u64(9))
    }

    /// a knows b; b is then held down by a (force-left).
    fn a_holds_b_down() -> (Node, Node) {
        let (mut a, mut b) = (node(1), node(2));
        let pb = Peer::new(b.identity().name().clone(), b.identity().addr());
        a.handle_command(Time::ZERO, Command::Join(vec![pb]))
            .unwrap();
        deliver(&mut b, &mut a);
        deliver(&mut a, &mut b);
        assert_eq!(a.num_members(), 1);
        a.handle_command(Time::ZERO, Command::ForceLeave(b.identity().name().clone()))
            .unwrap();
        assert_eq!(a.status().stopped_nodes.len(), 1);
        (a, b)
    }

    #[test]
    fn a_sync_never_resurrects_a_member_held_down_at_the_same_generation() {
        let (mut a, b) = a_holds_b_down();
        let c = node(3);
        let stale = foca::Member::new(b.identity().clone(), 40, foca::State::Alive);
        a.handle_datagram(
            Time::ZERO,
            c.identity().addr(),
            &members_from(&c, vec![stale]),
        );
        let s = a.status();
        assert_eq!(s.stopped_nodes, [b.identity().name().clone()]);
        assert!(!s.running_nodes.contains(b.identity().name()));
    }

    #[test]
    fn a_sync_brings_back_a_member_with_a_newer_generation() {
        let (mut a, b) = a_holds_b_down();
        let c = node(3);
        let renewed = foca::Member::alive(b.identity().renewed());
        a.handle_datagram(
            Time::ZERO,
            c.identity().addr(),
            &members_from(&c, vec![renewed]),
        );
        assert!(a.status().running_nodes.contains(b.identity().name()));
        assert!(a.status().stopped_nodes.is_empty());
    }

    #[test]
    fn a_sync_record_older_than_the_one_held_is_ignored() {
        let (mut a, mut b) = (node(1), node(2));
        let pb = Peer::new(b.identity().name().clone(), b.identity().addr());
        a.handle_command(Time::ZERO, Command::Join(vec![pb]))
            .unwrap();
        deliver(&mut b, &mut a);
        deliver(&mut a, &mut b);
        let c = node(3);
        let old = NodeId::new(b.identity().name().clone(), b.identity().addr(), 0);
        let down_old = foca::Member::new(old, 0, foca::State::Down);
        a.handle_datagram(
            Time::ZERO,
            c.identity().addr(),
            &members_from(&c, vec![down_old]),
        );
        assert!(a.status().running_nodes.contains(b.identity().name()));
    }

    #[test]
    fn a_digest_nobody_asked_for_is_rejected_and_counted() {
        let mut a = node(1);
        let c = node(3);
        let msg = SyncMsg::Digest {
            session: 77,
            from: c.identity().clone(),
            buckets: vec![0; sync::BUCKETS],
        };
        let cfg = Config::lan(3);
        let env = Envelope::new(cfg.cookie.as_bytes(), &cfg.cluster_name);
        let d = env.seal(
            Kind::Sync,
            &postcard::to_allocvec(&msg).unwrap(),
            &mut StdRng::seed_from_u64(1),
        );
        a.handle_datagram(Time::ZERO, c.identity().addr(), &d);
        assert_eq!(a.stats().sync.rejected_unsolicited, 1);
        assert_eq!(a.stats().dropped.sync_rejected, 1);
        assert_eq!(a.poll_transmit(), None);
    }

    #[test]
    fn two_nodes_with_different_views_converge_in_one_round() {
        // a knows c; b knows nobody. One session from b to a gives b both.
        let (mut a, mut b, mut c) = (node(1), node(2), node(3));
        let pa = Peer::new(a.identity().name().clone(), a.identity().addr());
        c.handle_command(Time::ZERO, Command::Join(vec![pa.clone()]))
            .unwrap();
        deliver(&mut a, &mut c);
        while a.poll_transmit().is_some() {}
        b.open_sync(a.identity().addr(), a.identity().name().key());
        for _ in 0..4 {
            deliver(&mut a, &mut b);
            deliver(&mut b, &mut a);
        }
        let names: Vec<_> = b.members().map(|m| m.name().clone()).collect();
        assert!(
            names.contains(a.identity().name()) && names.contains(c.identity().name()),
            "{names:?}"
        );
        assert!(a.members().any(|m| m.name() == b.identity().name()));
    }
}
