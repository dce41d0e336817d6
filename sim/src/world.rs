//! The world: every simulated node, a virtual clock, and one event queue.
//!
//! The clock jumps from one wakeup to the next, as quinn-proto's test
//! `Pair::step` does. Wakeups live in one binary heap ordered by (time,
//! sequence number): datagrams in flight, and each node's next timer
//! deadline (`Node::poll_timeout`). A node's timer entry is pushed whenever
//! its deadline moves earlier; entries that no longer match the node's armed
//! deadline are skipped when they come out (lazy invalidation), so a step
//! costs O(log queue) and never scans the nodes.
//!
//! Wakeups are handled in windows (see [`crate::parallel`]): from the
//! earliest queued instant `t`, every wakeup before `t` plus the network's
//! shortest latency, node by node, each node's in its (time, sequence)
//! order. What a node sends in a window reaches another node only after
//! it, so the nodes of a window are independent and may be handled on
//! several threads; what they produced (datagrams, timers, events) is then
//! merged in one fixed order, (time, node, order of production), whatever
//! the thread count: the event log is the same for every `--threads`.
//! `run_until` lengthens windows into rounds where each link's own latency
//! allows ([`World::run_until`]); events are then applied once no earlier
//! wakeup is left, so the log is the one plain windows give.
//!
//! Every node is a real `rollcall::core::Node`: every datagram is sealed by
//! its sender and opened by its receiver, exactly as in the agent.
//!
//! The world is also the in-memory harness of rollcall's own tests and
//! examples: [`WorldConfig::plain`] gives fixed 1 ms links and keeps every
//! event as a value ([`World::events`]), [`World::command`] hands a node an
//! operator's command, and [`run::joined`](crate::run::joined) forms a
//! cluster to start from.

use std::cmp::{Ordering, Reverse};
use std::collections::{BTreeMap, BinaryHeap, HashMap};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::Duration;

use rollcall::core::{
    Command, CommandError, Config, Event, Node, NodeId, NodeName, Peer, Role, Time,
};

use crate::audit::Audit;
use crate::crew::Crew;
use crate::error::SimError;
use crate::eventlog::{Entry, EventLog};
use crate::measure::{CrashCause, Measure};
use crate::network::{Fate, LinkTimings, NetProfile, NetStats, Network};
use crate::parallel;
use crate::rng::{node_seed, SimRng};
use crate::tuning::Tuning;

/// The most nodes one world holds (addresses 10.0.0.1 and up).
pub const MAX_NODES: u32 = 1 << 22;

const BASE_IP: u32 = u32::from_be_bytes([10, 0, 0, 1]);
const PORT: u16 = 4370;

/// The gossip address of node `i`: `10.x.y.z:4370`, counting from 10.0.0.1.
pub fn addr_of(i: u32) -> SocketAddr {
    SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::from(BASE_IP + i), PORT))
}

/// The node index behind a gossip address, if it is one of the world's.
pub fn index_of(addr: SocketAddr, nodes: u32) -> Option<u32> {
    match addr {
        SocketAddr::V4(a) if a.port() == PORT => {
            let i = u32::from(*a.ip()).checked_sub(BASE_IP)?;
            (i < nodes).then_some(i)
        }
        _ => None,
    }
}

/// How a world is built.
#[derive(Clone, Debug)]
pub struct WorldConfig {
    /// How many nodes (all stopped at first).
    pub nodes: u32,
    /// The run's seed: every node seed and network decision comes from it.
    pub seed: u64,
    /// Link timings and protocol profile.
    pub profile: NetProfile,
    /// Link timings other than the profile's, if set.
    pub links: Option<LinkTimings>,
    /// Sampling period of the convergence curve.
    pub sample_every: Duration,
    /// Keep the event log as text (for tests and `--event-log`).
    pub keep_log: bool,
    /// Keep every event the nodes report, as values ([`World::events`]).
    pub keep_events: bool,
    /// Sync on or off, autoclean.
    pub tuning: Tuning,
    /// The static discovery list: whenever a running node wants seeds
    /// (`Node::poll_discover`, the core's rediscovery policy), these nodes
    /// are its answer, given at once as the agent's static strategy gives
    /// them. Empty: requests go unanswered.
    pub discovery_seeds: Vec<u32>,
    /// The nodes that run as replicants (`Config::role`); every other
    /// node is a core node. A replicant refuses an explicit join, so when
    /// it starts, the world hands its targets to it as discovered seeds
    /// (`Node::handle_discovered`) instead.
    pub replicants: Vec<u32>,
    /// Threads that handle a window's nodes (1: all on the calling
    /// thread). The run is the same for every count.
    pub threads: usize,
    /// Windows with fewer wakeups than this are handled on the calling
    /// thread even with several threads (default
    /// [`parallel::MIN_PARALLEL`]); tests set it low to send every window
    /// through the pool. The run is the same for every value.
    pub min_parallel: usize,
}

impl WorldConfig {
    /// `nodes` nodes under `profile`, seeded with `seed`.
    pub fn new(nodes: u32, seed: u64, profile: NetProfile) -> Self {
        Self {
            nodes,
            seed,
            profile,
            links: None,
            sample_every: Duration::from_millis(100),
            keep_log: false,
            keep_events: false,
            tuning: Tuning::default(),
            discovery_seeds: vec![0],
            replicants: Vec::new(),
            threads: 1,
            min_parallel: parallel::MIN_PARALLEL,
        }
    }

    /// `nodes` nodes on a plain network, for tests and examples that follow
    /// single events: LAN protocol timings (`Config::lan`), every link
    /// exactly 1 ms with neither jitter nor loss, every event kept, and no
    /// discovery answers (nodes meet only by joining). Seed 1.
    pub fn plain(nodes: u32) -> Self {
        Self {
            links: Some(LinkTimings::fixed(Duration::from_millis(1))),
            keep_events: true,
            discovery_seeds: Vec::new(),
            ..Self::new(nodes, 1, NetProfile::Lan)
        }
    }
}

/// A wakeup: what a node is to handle.
#[derive(Debug)]
pub(crate) enum Work {
    Timer(u32),
    /// The answer to a request for seeds of node `.0`'s instance number `.1`
    /// (stale once it restarted).
    Discover(u32, u32),
    Deliver {
        to: u32,
        from: u32,
        payload: Vec<u8>,
    },
    /// Node `to` learns from the network that `gone`'s port is unreachable.
    Unreachable {
        to: u32,
        gone: u32,
    },
}

impl Work {
    /// The node that handles it.
    pub(crate) fn target(&self) -> u32 {
        match *self {
            Work::Timer(i) | Work::Discover(i, _) => i,
            Work::Deliver { to, .. } | Work::Unreachable { to, .. } => to,
        }
    }
}

/// A queued wakeup, ordered by (time, sequence number).
#[derive(Debug)]
pub(crate) struct Item {
    pub(crate) at: Time,
    pub(crate) seq: u64,
    pub(crate) work: Work,
}

impl PartialEq for Item {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl Eq for Item {}
impl PartialOrd for Item {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Item {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

/// One node's place in the world: the running instance, if any, and what
/// the world keeps about it across restarts.
pub(crate) struct Slot {
    pub(crate) node: Option<Node>,
    starts: u32,
    generation: u64,
    /// The running instance's identity generation as last reported to the
    /// world (it changes when the node renews itself).
    identity_generation: u64,
    pub(crate) armed: Option<Time>,
    started_at: Time,
    /// Crashed, with the host still up: datagrams to it are answered with
    /// "port unreachable" (at most one per sender per second, as a kernel
    /// rate-limits them), each sender's last answer time here.
    answers: Option<BTreeMap<u32, Time>>,
}

/// Traffic and time totals over every node instance of a run.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Totals {
    /// Datagrams the nodes sent.
    pub datagrams_sent: u64,
    /// Bytes the nodes sent (sealed, envelope included).
    pub bytes_sent: u64,
    /// Of the datagrams sent, those of the full-state sync exchange.
    pub sync_datagrams_sent: u64,
    /// Of the bytes sent, those of the full-state sync exchange.
    pub sync_bytes_sent: u64,
    /// Records and tombstones the nodes received in sync `Members` messages.
    pub sync_records_received: u64,
    /// Of those, records equal to the one the receiver held, not handed to
    /// foca.
    pub sync_records_unchanged: u64,
    /// Datagrams the nodes dropped on receipt (bad seal, malformed, ...).
    pub datagrams_dropped: u64,
    /// Probes that failed: suspicions the nodes raised.
    pub probes_failed: u64,
    /// Seconds of virtual time summed over live nodes.
    pub node_seconds: f64,
    /// Inputs handled (timeouts and datagrams).
    pub steps: u64,
}

impl Totals {
    /// Adds what `node` counted over the `lived` virtual time it ran.
    fn add(&mut self, node: &Node, lived: Duration) {
        let s = node.stats();
        self.datagrams_sent += s.datagrams_sent;
        self.bytes_sent += s.bytes_sent;
        self.sync_datagrams_sent += s.sync.datagrams_sent;
        self.sync_bytes_sent += s.sync.bytes_sent;
        self.sync_records_received += s.sync.records_received;
        self.sync_records_unchanged += s.sync.records_unchanged;
        self.datagrams_dropped += s.dropped.total();
        self.probes_failed += s.lifeguard.probes_failed;
        self.node_seconds += lived.as_secs_f64();
    }
}

/// Every node, the network, the clock and the measurements of one run.
///
/// The world drives the nodes and owns what they run on; what is measured of
/// them lives in [`Measure`] (from their events) and [`Audit`] (read from
/// the nodes themselves).
pub struct World {
    now: Time,
    queue: BinaryHeap<Reverse<Item>>,
    seq: u64,
    slots: Vec<Slot>,
    names: Vec<NodeName>,
    n: u32,
    seed: u64,
    config: Config,
    net: Network,
    /// How late each node handles its inputs (zero: normal speed).
    slow: Vec<Duration>,
    /// Each running node's identity generation, as of the events merged so
    /// far (what a `MemberDown` is compared with).
    generations: Vec<Option<u64>>,
    /// The threads that handle a window's nodes, when more than one.
    crew: Option<Crew>,
    threads: usize,
    min_parallel: usize,
    /// The window length: the network's shortest latency (at least 1 ns).
    span: Duration,
    /// Notes merged but not yet applied, with the order they were merged
    /// in: applied in (time, node, order) once no wakeup before them is
    /// left (`release`).
    pending: Vec<(Time, u32, u64, Note)>,
    merged_notes: u64,
    /// For each node, the last round it had work in (`window`).
    round_of: Vec<u64>,
    /// For each node, the latest instant it has handled a wakeup at.
    handled: Vec<Time>,
    windows: u64,
    window_items: u64,
    /// A one-thread run's node work and its best split over more threads.
    spread: parallel::Spread,
    measure: Measure,
    log: EventLog,
    totals: Totals,
    audit: Audit,
    progress: Option<Box<dyn FnMut(Time) + Send>>,
    discovery_seeds: Vec<Peer>,
    index_of_name: HashMap<NodeName, u32>,
    /// Each node's role.
    roles: Vec<Role>,
}

impl World {
    /// A world of stopped nodes.
    pub fn new(cfg: &WorldConfig) -> Result<Self, SimError> {
        if cfg.nodes == 0 {
            return Err(SimError::NoNodes);
        }
        if cfg.nodes > MAX_NODES {
            return Err(SimError::TooManyNodes(u64::from(cfg.nodes)));
        }
        let config = cfg.profile.configure(cfg.nodes, &cfg.tuning);
        config.validate()?;
        let names = (0..cfg.nodes)
            .map(|i| match addr_of(i) {
                SocketAddr::V4(a) => format!("rc@{}", a.ip()).parse(),
                SocketAddr::V6(a) => format!("rc@{}", a.ip()).parse(),
            })
            .collect::<Result<Vec<NodeName>, _>>()?;
        let n = cfg.nodes as usize;
        Ok(Self {
            now: Time::ZERO,
            queue: BinaryHeap::new(),
            seq: 0,
            slots: (0..n)
                .map(|_| Slot {
                    node: None,
                    starts: 0,
                    generation: 0,
                    identity_generation: 0,
                    armed: None,
                    started_at: Time::ZERO,
                    answers: None,
                })
                .collect(),
            discovery_seeds: cfg
                .discovery_seeds
                .iter()
                .filter(|&&s| s < cfg.nodes)
                .map(|&s| Peer::new(names[s as usize].clone(), addr_of(s)))
                .collect(),
            index_of_name: names
                .iter()
                .enumerate()
                .map(|(i, n)| (n.clone(), i as u32))
                .collect(),
            roles: (0..cfg.nodes)
                .map(|i| {
                    if cfg.replicants.contains(&i) {
                        Role::Replicant
                    } else {
                        Role::Core
                    }
                })
                .collect(),
            names,
            n: cfg.nodes,
            seed: cfg.seed,
            config,
            net: Network::new(cfg.seed, n, cfg.links.unwrap_or(cfg.profile.links())),
            slow: vec![Duration::ZERO; n],
            generations: vec![None; n],
            crew: parallel::crew(cfg.threads),
            threads: cfg.threads.max(1),
            min_parallel: cfg.min_parallel,
            span: parallel::span(cfg.links.unwrap_or(cfg.profile.links())),
            pending: Vec::new(),
            merged_notes: 0,
            round_of: vec![0; n],
            handled: vec![Time::ZERO; n],
            windows: 0,
            window_items: 0,
            spread: parallel::Spread::default(),
            measure: Measure::new(n, cfg.sample_every),
            log: EventLog::new(cfg.keep_log, cfg.keep_events),
            totals: Totals::default(),
            audit: Audit::new(cfg.nodes, cfg.sample_every),
            progress: None,
        })
    }

    /// Calls `f` with the virtual time every few thousand steps.
    pub fn set_progress(&mut self, f: Box<dyn FnMut(Time) + Send>) {
        self.progress = Some(f);
    }

    /// The virtual time.
    pub fn now(&self) -> Time {
        self.now
    }

    /// How many nodes the world holds (running or not).
    pub fn len(&self) -> u32 {
        self.n
    }

    /// Whether the world holds no node (never: worlds have at least one).
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// Node `i`'s role (core for a node out of range).
    pub fn role(&self, i: u32) -> Role {
        self.roles.get(i as usize).copied().unwrap_or_default()
    }

    /// The protocol configuration every node runs with (each with its own
    /// [`role`](Self::role)).
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The network, to set loss or duplication (a partition goes through
    /// [`partition`](Self::partition), which tells the measurements).
    pub fn net(&mut self) -> &mut Network {
        &mut self.net
    }

    /// The network, read-only.
    pub fn network(&self) -> &Network {
        &self.net
    }

    /// The measurements so far.
    pub fn measure(&self) -> &Measure {
        &self.measure
    }

    /// What the audit found so far.
    pub fn audit(&self) -> &Audit {
        &self.audit
    }

    /// The running nodes, in index order, with their indices.
    pub fn nodes(&self) -> impl Iterator<Item = (u32, &Node)> + '_ {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(i, s)| s.node.as_ref().map(|n| (i as u32, n)))
    }

    /// The event log so far.
    pub fn log(&self) -> &EventLog {
        &self.log
    }

    /// Every event the nodes reported so far, as (time, node, event), when
    /// the world keeps them ([`WorldConfig::keep_events`]); empty otherwise.
    pub fn events(&self) -> &[(Time, u32, Event)] {
        self.log.events()
    }

    /// Records a scenario operation in the log and as a convergence mark.
    pub fn mark(&mut self, what: String) {
        self.log.record_op(self.now, &what);
        self.measure.mark(self.now, what);
    }

    /// Node `i`, if it is running.
    pub fn node(&self, i: u32) -> Option<&Node> {
        self.slots.get(i as usize)?.node.as_ref()
    }

    /// Whether node `i` is running.
    pub fn is_running(&self, i: u32) -> bool {
        self.node(i).is_some()
    }

    /// The peer (name and address) of node `i`.
    pub fn peer(&self, i: u32) -> Peer {
        Peer::new(self.names[i as usize].clone(), addr_of(i))
    }

    /// Whether node `at` lists node `who` as running, and as stopped (as
    /// `status` reports them); both false if `at` is not running.
    pub fn lists(&self, at: u32, who: u32) -> (bool, bool) {
        let (Some(node), Some(who)) = (self.node(at), self.names.get(who as usize)) else {
            return (false, false);
        };
        let s = node.status();
        (s.running_nodes.contains(who), s.stopped_nodes.contains(who))
    }

    /// Starts node `i` (a first boot, or a restart under the same name with
    /// the next generation and a fresh state) and has it join `targets`.
    /// Does nothing if it is running or out of range.
    pub fn start(&mut self, i: u32, targets: &[u32]) {
        let Some(slot) = self.slots.get_mut(i as usize) else {
            return;
        };
        if slot.node.is_some() {
            return;
        }
        let generation = slot.generation + 1;
        let id = NodeId::new(self.names[i as usize].clone(), addr_of(i), generation);
        let role = self.roles[i as usize];
        let config = Config {
            role,
            ..self.config.clone()
        };
        let mut node = match Node::new(id, config, node_seed(self.seed, i, slot.starts)) {
            Ok(node) => node,
            // `World::new` validated this very configuration.
            Err(_) => return,
        };
        // A new node wants seeds at once: the join below (or a restored
        // view) is the answer to that first request, with the targets the
        // scenario chose; later requests get `discovery_seeds`.
        let _ = node.poll_discover();
        slot.node = Some(node);
        slot.answers = None;
        slot.generation = generation;
        slot.identity_generation = generation;
        slot.starts += 1;
        slot.started_at = self.now;
        slot.armed = None;
        self.generations[i as usize] = Some(generation);
        self.log.record(self.now, i, Entry::Start, i, generation);
        self.measure.on_start(self.now, i);
        let peers: Vec<Peer> = targets
            .iter()
            .filter(|&&t| t != i && t < self.n)
            .map(|&t| self.peer(t))
            .collect();
        if !peers.is_empty() {
            if let Some(node) = self.slots[i as usize].node.as_mut() {
                if role.is_core() {
                    // Refusals (nothing to join) change nothing; the log shows no join.
                    let _ = node.handle_command(self.now, Command::Join(peers));
                } else {
                    // Replicants join through discovery only.
                    node.handle_discovered(self.now, &peers);
                }
            }
        }
        self.drain(i);
    }

    /// Has every running node take every other running node as alive
    /// (`Node::restore_members`), without any exchange: a restored start.
    pub fn restore_all(&mut self) {
        let ids: Vec<NodeId> = (0..self.n)
            .filter_map(|i| self.node(i).map(|n| n.identity().clone()))
            .collect();
        for i in 0..self.n {
            let Some(node) = self.slots[i as usize].node.as_mut() else {
                continue;
            };
            node.restore_members(self.now, ids.iter().cloned());
            self.drain(i);
        }
    }

    /// Hands node `i` an operator's command (join, leave, force-leave) and
    /// sends what it has to send. `None` if node `i` is not running.
    ///
    /// The measurements are not told: a node that leaves still counts as
    /// live for [`Measure`] ([`force_leave`](Self::force_leave) is the
    /// measured way to remove a node).
    pub fn command(&mut self, i: u32, command: Command) -> Option<Result<(), CommandError>> {
        let node = self.slots.get_mut(i as usize)?.node.as_mut()?;
        let result = node.handle_command(self.now, command);
        self.drain(i);
        Some(result)
    }

    /// Node `by` runs `force-leave` on node `node`'s name. From then on
    /// `node` is out: it no longer counts as live for the views, and any
    /// later `MemberUp` of its generation is a resurrection. Does nothing
    /// unless both run.
    pub fn force_leave(&mut self, by: u32, node: u32) {
        let Some(generation) = self.node(node).map(|n| n.identity().generation()) else {
            return;
        };
        let name = self.names[node as usize].clone();
        let Some(runner) = self
            .slots
            .get_mut(by as usize)
            .and_then(|s| s.node.as_mut())
        else {
            return;
        };
        if let Err(e) = runner.handle_command(self.now, Command::ForceLeave(name)) {
            self.log
                .record_other(self.now, by, &format!("force-leave refused: {e}"));
        }
        self.measure.on_force_leave(self.now, node, generation);
        self.drain(by);
    }

    /// Crashes node `i`: it stops at once, its state is lost, datagrams to
    /// it are dropped. Does nothing if it is not running.
    /// Crashes node `i`'s process (`answers`: its host stays up and answers
    /// datagrams with "port unreachable") or its whole host (silence).
    pub fn crash(&mut self, i: u32, answers: bool) {
        let now = self.now;
        let Some(slot) = self.slots.get_mut(i as usize) else {
            return;
        };
        let Some(node) = slot.node.take() else {
            return;
        };
        slot.answers = answers.then(BTreeMap::new);
        slot.generation = slot.generation.max(node.identity().generation());
        slot.armed = None;
        let started = slot.started_at;
        self.generations[i as usize] = None;
        self.retire(&node, started);
        self.log
            .record(now, i, Entry::Crash, i, node.identity().generation());
        let cause = if answers {
            CrashCause::Process
        } else {
            CrashCause::Host
        };
        self.measure.on_crash(now, i, cause);
    }

    fn retire(&mut self, node: &Node, started: Time) {
        self.totals.add(node, self.now - started);
    }

    /// Makes node `i` handle every input `delay` late (zero: normal speed).
    pub fn set_slow(&mut self, i: u32, delay: Duration) {
        if let Some(slow) = self.slow.get_mut(i as usize) {
            *slow = delay;
        }
    }

    /// The nodes that are running, in index order.
    pub fn running(&self) -> impl Iterator<Item = u32> + '_ {
        (0..self.n).filter(|&i| self.is_running(i))
    }

    fn push(&mut self, at: Time, work: Work) {
        self.seq += 1;
        self.queue.push(Reverse(Item {
            at,
            seq: self.seq,
            work,
        }));
    }

    /// Sends node `i`'s datagrams into the network, reports its events and
    /// re-arms its timer, now (outside any window: a scenario operation).
    fn drain(&mut self, i: u32) {
        let iu = i as usize;
        let mut rng = self.net.rngs[iu].clone();
        let mut out = Outbox::default();
        let shared = Shared {
            net: &self.net,
            slow: &self.slow,
            discovery_seeds: &self.discovery_seeds,
            n: self.n,
        };
        drain(
            i,
            &mut self.slots[iu],
            &mut rng,
            &shared,
            self.now,
            &mut out,
        );
        self.net.rngs[iu] = rng;
        self.merge(vec![(i, out)]);
        self.release(None);
    }

    /// Takes what nodes produced, in one fixed order whatever the thread
    /// count: wakeups are queued by (time produced, node, order); events
    /// wait in `pending` for [`release`](Self::release).
    fn merge(&mut self, outs: Vec<(u32, Outbox)>) {
        let mut sends = Vec::new();
        let mut last = self.now;
        for (i, out) in outs {
            if out.steps > 0 {
                let done = &mut self.handled[i as usize];
                *done = (*done).max(out.last);
            }
            self.net.add_stats(&out.stats);
            self.totals.steps += out.steps;
            last = last.max(out.last);
            sends.extend(out.sends.into_iter().map(|(t, item)| (t, i, item)));
            for (t, note) in out.notes {
                self.merged_notes += 1;
                self.pending.push((t, i, self.merged_notes, note));
            }
        }
        // Stable sorts: within one node, the order of production stays.
        sends.sort_by_key(|(t, i, _)| (*t, *i));
        // No node is woken before an instant it has handled: what windows
        // and rounds rest on.
        debug_assert!(sends.iter().all(|(_, _, item)| self
            .handled
            .get(item.work.target() as usize)
            .is_none_or(|done| item.at >= *done)));
        for (_, _, item) in sends {
            self.push(item.at, item.work);
        }
        self.now = self.now.max(last);
    }

    /// Applies the pending events earlier than `before` (all with `None`)
    /// by (time, node, order): no wakeup left is earlier, so no event to
    /// come sorts before them.
    fn release(&mut self, before: Option<Time>) {
        if self.pending.is_empty() {
            return;
        }
        self.pending
            .sort_unstable_by_key(|(t, i, k, _)| (*t, *i, *k));
        let ready = match before {
            Some(b) => self.pending.partition_point(|(t, ..)| *t < b),
            None => self.pending.len(),
        };
        let rest = self.pending.split_off(ready);
        let ready = std::mem::replace(&mut self.pending, rest);
        for (t, i, _, note) in ready {
            self.measure.sample_until(t);
            match note {
                Note::Event(e) => self.on_event(t, i, e),
                Note::Generation(g) => self.generations[i as usize] = Some(g),
                Note::Resync(members) => self.measure.resync(t, i, &members),
            }
        }
    }

    fn on_event(&mut self, now: Time, i: u32, e: Event) {
        self.log.keep_event(now, i, &e);
        let idx = |id: &NodeId| index_of(id.addr(), self.n);
        match &e {
            Event::MemberUp(id) => {
                if let Some(m) = idx(id) {
                    self.log.record(now, i, Entry::Up, m, id.generation());
                    if self.measure.is_resurrection(i, m, id.generation()) {
                        self.log
                            .record_other(now, i, &format!("RESURRECTION of {id:?}"));
                    }
                    self.measure.member_up(now, i, m);
                }
            }
            Event::MemberDown(id) => {
                if let Some(m) = idx(id) {
                    self.log.record(now, i, Entry::Down, m, id.generation());
                    let current = self.generations[m as usize];
                    let false_positive = (current == Some(id.generation())
                        && !self.net.separated(i, m))
                    .then_some(id.generation());
                    if false_positive.is_some() {
                        let slow = |x: u32| !self.slow[x as usize].is_zero();
                        let (member_slow, observer_slow) = (slow(m), slow(i));
                        let window = self.config.swim.suspect_to_down_after;
                        let after_heal = self.net.lifted_at().is_some_and(|at| now - at < window)
                            && self.net.separated_before_heal(m);
                        self.measure
                            .false_down_cause(member_slow, observer_slow, after_heal);
                    }
                    self.measure.member_down(now, i, m, false_positive);
                }
            }
            Event::MemberLeft(id) | Event::NodeForceLeft(id) => {
                // Gone from the active set, by the member's (or an
                // operator's) decision: not a failure, never a false positive.
                if let Some(m) = idx(id) {
                    self.log.record(now, i, Entry::Left, m, id.generation());
                    self.measure.member_down(now, i, m, None);
                }
            }
            Event::MemberRenewed { new, .. } => {
                // The member is active under its new identity (a restart,
                // or a former side-mate back after a lost partition).
                if let Some(m) = idx(new) {
                    self.log.record(now, i, Entry::Renewed, m, new.generation());
                    self.measure.member_up(now, i, m);
                }
            }
            // A move between alive and suspect keeps the member active:
            // the views the checks read do not change, and the log keeps
            // the entries it had before these events existed.
            Event::MemberSuspect(_) | Event::MemberAlive(_) => {}
            Event::Joined => self.log.record(now, i, Entry::Joined, i, 0),
            Event::Alone => self.log.record(now, i, Entry::Alone, i, 0),
            Event::SelfRenewed(id) => {
                self.log
                    .record(now, i, Entry::SelfRenewed, i, id.generation());
                // The node's view as it was then follows as a `Note::Resync`.
            }
            Event::Rejoined { .. } => {
                // The view the events built stays: a loser's former
                // side-mates come back as `MemberRenewed` (or unchanged),
                // or are reported `MemberDown` after a grace; the winners
                // come up by `MemberUp` (ALGORITHM.md, "Autoheal").
                self.log.record_other(now, i, &format!("{e:?}"));
            }
            Event::NodeCleaned(name) => {
                if let Some(&m) = self.index_of_name.get(name) {
                    self.measure.on_cleaned(now, m);
                }
                self.log.record_other(now, i, &format!("{e:?}"));
            }
            // Events that do not change the active set (partition reports):
            // logged by their debug form, which is deterministic.
            other => self.log.record_other(now, i, &format!("{other:?}")),
        }
    }

    /// Cuts the network into sides (`side[i]` is node `i`'s; see
    /// [`Network::partition`]), named `what` in the measurements: from now
    /// on a node's correct view is the live nodes on its side.
    pub fn partition(&mut self, side: Vec<u16>, one_way: bool, what: &str) {
        self.net.partition(side.clone(), one_way);
        self.measure.partition(self.now, what, side);
    }

    /// Removes every partition, first having the audit count the records
    /// live nodes hold of nodes the partition separates them from (see
    /// [`Audit::records_across_at_heal`]); from now on a correct view is
    /// every live node again.
    pub fn heal(&mut self) {
        if self.net.is_partitioned() {
            let nodes = self
                .slots
                .iter()
                .enumerate()
                .filter_map(|(i, s)| s.node.as_ref().map(|n| (i as u32, n)));
            self.audit.before_heal(nodes, &self.measure, &self.net);
        }
        self.net.heal(self.now);
        self.measure.heal(self.now);
    }

    /// Handles every wakeup up to and including `until`, then sets the clock to `until`.
    /// It goes in rounds: windows that run past the network's shortest
    /// latency while no other node of the round can reach a wakeup's node
    /// (each link's own latency), at most twice that latency long.
    pub fn run_until(&mut self, until: Time) {
        while self.window(until, true) {}
        self.release(None);
        self.measure.sample_until(until);
        self.now = self.now.max(until);
    }

    /// Handles one window of wakeups, none later than `until`; returns
    /// false if no wakeup is due by `until`. A window starts at the
    /// earliest queued instant `t0` and holds every wakeup before
    /// `t0` + the network's shortest latency (see the module docs of
    /// [`crate::parallel`]). A `long` window (a round) goes on past that,
    /// in time order, while each wakeup's node is out of reach of every
    /// other node of the round: a wakeup at `u` of node `k` is taken if
    /// `u` < `s_j` + the latency of the link from `j` to `k` for every
    /// other node `j` of the round, `s_j` its first wakeup in it. Each node
    /// then handles, besides its wakeups taken, those it schedules for
    /// itself before its own horizon: the earliest a datagram of another
    /// node of the round can reach it, and no later than the first wakeup
    /// left. A round ends before `t0` + twice the shortest latency (a
    /// datagram there and back: a node outside the round woken by one of
    /// the round's datagrams answers at once) and short of the next audit,
    /// so audits still see every node at one instant; events are applied
    /// in time order as before (`release`). The event log is the same
    /// either way.
    fn window(&mut self, until: Time, long: bool) -> bool {
        let start = match self.queue.peek() {
            Some(Reverse(top)) if top.at <= until => top.at,
            _ => return false,
        };
        if self.audit.due(start) {
            let nodes = self
                .slots
                .iter()
                .enumerate()
                .filter_map(|(i, s)| s.node.as_ref().map(|n| (i as u32, n)));
            self.audit
                .run(self.now, nodes, &mut self.measure, &mut self.log);
        }
        let cap = until + Duration::from_nanos(1);
        let short = (start + self.span).min(cap);
        // A round ends before a datagram can go there and back: what a
        // node of the round sends may wake another node that answers.
        let cap = match self.audit.next_due() {
            next if long && next > start => cap.min(next).min(start + self.span * 2),
            _ if long => cap.min(start + self.span * 2),
            _ => short,
        };
        self.windows += 1;
        let round = self.windows;
        let mut items = Vec::new();
        let mut firsts: Vec<(u32, Time)> = Vec::new();
        let mut rest = cap;
        while let Some(Reverse(top)) = self.queue.peek() {
            if top.at >= cap {
                break;
            }
            let k = top.work.target();
            // Past the shortest latency, a wakeup is taken while the round
            // holds at most `ROUND_NODES` nodes and no other node of the
            // round can reach its node by then (`firsts` is in time order:
            // a node whose first wakeup plus the shortest latency is past
            // it, and every later one, cannot).
            let crowded = firsts.len() > parallel::ROUND_NODES
                || (firsts.len() == parallel::ROUND_NODES && self.round_of[k as usize] != round);
            if top.at >= short
                && (crowded
                    || firsts
                        .iter()
                        .take_while(|&&(_, s)| s + self.span <= top.at)
                        .any(|&(j, s)| j != k && top.at >= s + self.net.link_latency(j, k)))
            {
                rest = top.at;
                break;
            }
            let Some(Reverse(item)) = self.queue.pop() else {
                break;
            };
            if self.round_of[k as usize] != round {
                self.round_of[k as usize] = round;
                firsts.push((k, item.at));
            }
            items.push(item);
        }
        // A crowded round took nothing past the shortest latency: it is a
        // plain window.
        let horizon = if long && firsts.len() <= parallel::ROUND_NODES {
            parallel::Horizon::Round {
                firsts: &firsts,
                rest,
                span: self.span,
            }
        } else {
            parallel::Horizon::Until(short.min(rest))
        };
        let count = items.len() as u64;
        let steps_before = self.totals.steps;
        let mut rngs = std::mem::take(&mut self.net.rngs);
        let shared = Shared {
            net: &self.net,
            slow: &self.slow,
            discovery_seeds: &self.discovery_seeds,
            n: self.n,
        };
        let parallel = self.threads > 1 && count >= self.min_parallel as u64;
        let outs = parallel::run_window(
            self.crew.as_ref().filter(|_| parallel),
            (self.threads == 1).then_some(&mut self.spread),
            &mut self.slots,
            &mut rngs,
            &shared,
            items,
            horizon,
            self.seq,
        );
        self.net.rngs = rngs;
        self.merge(outs);
        let next = self.queue.peek().map(|Reverse(top)| top.at);
        self.release(next);
        self.window_items += count;
        if self.totals.steps / 8192 != steps_before / 8192 {
            let now = self.now;
            if let Some(p) = self.progress.as_mut() {
                p(now);
            }
        }
        true
    }

    /// Handles every wakeup for `d` of virtual time.
    pub fn run_for(&mut self, d: Duration) {
        self.run_until(self.now + d);
    }

    /// Handles wakeups until `done` holds (checked after each window) or
    /// `until`. Returns whether `done` held.
    pub fn run_while(&mut self, until: Time, mut done: impl FnMut(&World) -> bool) -> bool {
        loop {
            if done(self) {
                return true;
            }
            if !self.window(until, false) {
                break;
            }
        }
        self.run_until(until);
        done(self)
    }

    /// The threads that handle a window's nodes.
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Windows handled so far, and the wakeups handled in them.
    pub fn windows(&self) -> (u64, u64) {
        (self.windows, self.window_items)
    }

    /// On one thread, the nodes' work and how well more threads could
    /// share it ([`parallel::Spread`]); zero with more threads.
    pub fn spread(&self) -> parallel::Spread {
        self.spread
    }

    /// Traffic and time totals so far, over every node instance.
    pub fn totals(&self) -> Totals {
        let mut t = self.totals;
        for slot in &self.slots {
            if let Some(node) = &slot.node {
                t.add(node, self.now - slot.started_at);
            }
        }
        t
    }

    /// How many wakeups are queued (datagrams in flight and timer entries).
    pub fn queued(&self) -> usize {
        self.queue.len()
    }
}

/// What the nodes of a window may read: nothing in it changes during the
/// window.
pub(crate) struct Shared<'a> {
    pub(crate) net: &'a Network,
    pub(crate) slow: &'a [Duration],
    pub(crate) discovery_seeds: &'a [Peer],
    pub(crate) n: u32,
}

/// Something a node's handling produced for the world's measurements.
#[derive(Debug)]
pub(crate) enum Note {
    /// An event the node reported.
    Event(Event),
    /// The node's identity generation changed (it renewed itself).
    Generation(u64),
    /// The node's view right after it renewed itself, to re-read.
    Resync(Vec<u32>),
}

/// What one node's handling produced, in the order it was produced.
#[derive(Debug, Default)]
pub(crate) struct Outbox {
    /// Wakeups for the queue, with the time each was produced at (their
    /// sequence numbers are given when they are queued).
    pub(crate) sends: Vec<(Time, Item)>,
    /// Events and the like, with the time of each.
    pub(crate) notes: Vec<(Time, Note)>,
    /// The network's counters for what the node sent.
    pub(crate) stats: NetStats,
    /// Wakeups handled.
    pub(crate) steps: u64,
    /// The latest instant handled.
    pub(crate) last: Time,
}

impl Outbox {
    fn send(&mut self, now: Time, at: Time, work: Work) {
        self.sends.push((now, Item { at, seq: 0, work }));
    }
}

/// Node `i` handles one wakeup and drains what it produced into `out`.
pub(crate) fn step(
    i: u32,
    slot: &mut Slot,
    rng: &mut SimRng,
    shared: &Shared<'_>,
    item: Item,
    out: &mut Outbox,
) {
    out.steps += 1;
    let now = item.at;
    out.last = out.last.max(now);
    match item.work {
        Work::Timer(_) => {
            if slot.armed != Some(item.at) {
                return; // stale: a newer, earlier entry was pushed
            }
            slot.armed = None;
            let Some(node) = slot.node.as_mut() else {
                return;
            };
            node.handle_timeout(now);
        }
        Work::Discover(_, starts) => {
            if slot.starts != starts {
                return; // a round of an instance that crashed
            }
            let Some(node) = slot.node.as_mut() else {
                return;
            };
            node.handle_discovered(now, shared.discovery_seeds);
        }
        Work::Deliver { from, payload, .. } => {
            let Some(node) = slot.node.as_mut() else {
                // The receiver is down: the datagram is lost, and a
                // host still up answers "port unreachable".
                answer_unreachable(i, slot, shared, now, from, out);
                return;
            };
            node.handle_datagram(now, addr_of(from), &payload);
        }
        Work::Unreachable { gone, .. } => {
            let Some(node) = slot.node.as_mut() else {
                return;
            };
            node.handle_unreachable(now, addr_of(gone));
        }
    }
    drain(i, slot, rng, shared, now, out);
}

/// A datagram from `from` reached crashed node `to`: if `to`'s host is
/// up, `from` hears "port unreachable" a link latency later (at most once
/// a second per sender; nothing across a partition).
fn answer_unreachable(
    to: u32,
    slot: &mut Slot,
    shared: &Shared<'_>,
    now: Time,
    from: u32,
    out: &mut Outbox,
) {
    let Some(answers) = slot.answers.as_mut() else {
        return;
    };
    if answers
        .get(&from)
        .is_some_and(|at| now - *at < Duration::from_secs(1))
    {
        return;
    }
    answers.insert(from, now);
    if shared.net.separated(to, from) {
        return;
    }
    let at = now + shared.net.link_latency(to, from);
    out.send(now, at, Work::Unreachable { to: from, gone: to });
}

/// Sends node `i`'s datagrams into the network (drawing from its stream
/// `rng`), takes its events, asks for its seeds and re-arms its timer: all
/// into `out`.
fn drain(
    i: u32,
    slot: &mut Slot,
    rng: &mut SimRng,
    shared: &Shared<'_>,
    now: Time,
    out: &mut Outbox,
) {
    while let Some(t) = slot.node.as_mut().and_then(|n| n.poll_transmit()) {
        let Some(to) = index_of(t.to, shared.n) else {
            out.stats.sent += 1;
            out.stats.unroutable += 1;
            continue;
        };
        let slow = shared.slow[to as usize];
        let deliver = |payload| Work::Deliver {
            to,
            from: i,
            payload,
        };
        match shared.net.route_with(rng, &mut out.stats, now, i, to) {
            Fate::Once(at) => out.send(now, at + slow, deliver(t.payload)),
            Fate::Twice(a, b) => {
                out.send(now, a + slow, deliver(t.payload.clone()));
                out.send(now, b + slow, deliver(t.payload));
            }
            Fate::Partitioned | Fate::Lost => {}
        }
    }
    while let Some(e) = slot.node.as_mut().and_then(|n| n.poll_event()) {
        let renewed = matches!(e, Event::SelfRenewed(_));
        out.notes.push((now, Note::Event(e)));
        if let (true, Some(node)) = (renewed, slot.node.as_ref()) {
            let members = node
                .members()
                .filter_map(|id| index_of(id.addr(), shared.n))
                .collect();
            out.notes.push((now, Note::Resync(members)));
        }
    }
    let wants_seeds = slot.node.as_mut().is_some_and(|n| n.poll_discover());
    if wants_seeds && !shared.discovery_seeds.is_empty() {
        // Static discovery answers at once, as in the agent.
        out.send(now, now, Work::Discover(i, slot.starts));
    }
    if let Some(g) = slot.node.as_ref().map(|n| n.identity().generation()) {
        if g != slot.identity_generation {
            slot.identity_generation = g;
            out.notes.push((now, Note::Generation(g)));
        }
    }
    if let Some(deadline) = slot.node.as_ref().and_then(|n| n.poll_timeout()) {
        let at = deadline.max(now) + shared.slow[i as usize];
        if slot.armed.is_none_or(|armed| at < armed) {
            slot.armed = Some(at);
            out.send(now, at, Work::Timer(i));
        }
    }
}
