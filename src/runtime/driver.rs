//! The owner task: the one place a [`Node`] lives in the runtime.
//!
//! It `select!`s over the socket, the node's next deadline and an input
//! channel (commands, status reads, discovery results, shutdown). After every
//! input it drains the node's outputs: each datagram is sent, each event is
//! logged, recorded in the history, dated for the verbose status and
//! broadcast to subscribers. No lock guards the node; everything else talks
//! to it through [`Input`]s.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{broadcast, mpsc, watch};
use tokio::task::JoinHandle;

use super::clock::Clock;
use super::history::{History, RecordedEvent};
use super::inputs::Input;
use super::monitor::EventStream;
use super::stats::{AgentStats, DiscoveryCounters};
use super::transport::{Received, Transport};
use super::verbose::Since;
use crate::core::name::Host;
use crate::core::{Command, Event, Node, NodeName, Unreachable};

/// How long the owner task waits for discovery to unregister when stopping.
const UNREGISTER_WAIT: Duration = Duration::from_secs(2);

/// Datagrams the owner task handles in a row before it yields to the other
/// tasks of the runtime (the control socket, discovery, the metrics
/// endpoint). Under a flood the socket is never empty: without the yield,
/// a `status` request waited seconds for an answer.
const DATAGRAMS_PER_TURN: u32 = 64;

/// The owner task's state.
pub(crate) struct Driver<T: Transport> {
    pub(crate) node: Node,
    pub(crate) transport: T,
    pub(crate) clock: Clock,
    pub(crate) inputs: mpsc::Receiver<Input>,
    pub(crate) events: broadcast::Sender<Event>,
    /// The same events, numbered and dated, for monitors.
    pub(crate) recorded: broadcast::Sender<RecordedEvent>,
    /// The last events, for `monitor --since-start`.
    pub(crate) history: History,
    /// Since when each member is in its state.
    pub(crate) since: Since,
    pub(crate) members: watch::Sender<usize>,
    /// Whether the node has left (`leave`, or force-left): discovery pauses
    /// and unregisters while it is true.
    pub(crate) left: watch::Sender<bool>,
    /// Requests for seeds, to the discovery task (the node decides when).
    pub(crate) discover: mpsc::Sender<()>,
    pub(crate) discovery: Option<JoinHandle<()>>,
    /// Where each member and seed named so far is reached, to close a
    /// removed member's connection (autoclean names only the node).
    pub(crate) addrs: HashMap<NodeName, SocketAddr>,
    /// The discovery task's counters, and its strategy's name.
    pub(crate) discovery_stats: (Arc<DiscoveryCounters>, &'static str),
}

/// How many names `Driver::addrs` holds at most (members come and go by
/// the events that remove them; seeds that never answer stay until then).
const MAX_REMEMBERED: usize = 65_536;

impl<T: Transport> Driver<T> {
    /// Runs until a `Shutdown` input or until every handle is gone.
    pub(crate) async fn run(mut self) {
        // One byte more than the node accepts: a datagram that fills the
        // buffer is too large (see `Transport::recv`).
        let mut buf = vec![0u8; self.node.config().max_datagram_size + 1];
        let mut done = None;
        // A new node wants seeds before its first input.
        self.request_discovery();
        let mut in_a_row = 0u32;
        loop {
            let deadline = self.node.poll_timeout();
            let wake = deadline.map(|t| self.clock.instant(t));
            // Inputs first, then timers, then datagrams: a flood of
            // datagrams delays neither a command nor a probe that is due.
            let mut datagram = false;
            tokio::select! {
                biased;
                input = self.inputs.recv() => match input {
                    Some(Input::Shutdown { leave, done: d }) => {
                        if leave && !self.node.has_left() {
                            let now = self.clock.now();
                            if let Err(e) = self.node.handle_command(now, Command::Leave) {
                                tracing::warn!("leave on shutdown: {e}");
                            } else {
                                tracing::info!("left the cluster");
                            }
                        }
                        done = Some(d);
                    }
                    Some(input) => self.handle(input),
                    None => break,
                },
                () = sleep_until(wake), if wake.is_some() => {
                    let now = self.clock.at_least(deadline.unwrap_or_default());
                    self.node.handle_timeout(now);
                }
                received = self.transport.recv(&mut buf) => {
                    let now = self.clock.now();
                    datagram = true;
                    match received {
                        Received::Datagram { len, from } => {
                            self.node.handle_datagram(now, from, &buf[..len]);
                        }
                        Received::Unreachable(addr) => {
                            match self.node.handle_unreachable(now, addr) {
                                Unreachable::Suspected => tracing::info!(
                                    "suspect: nothing listens at {addr} any more (port unreachable)"
                                ),
                                other => {
                                    tracing::debug!(%addr, ?other, "port unreachable, not taken");
                                }
                            }
                        }
                    }
                }
            }
            self.drain().await;
            if done.is_some() {
                break;
            }
            in_a_row = if datagram { in_a_row + 1 } else { 0 };
            if in_a_row >= DATAGRAMS_PER_TURN {
                in_a_row = 0;
                tokio::task::yield_now().await;
            }
        }
        let Driver {
            inputs,
            discovery,
            discover,
            ..
        } = self;
        drop(discover);
        // Dropping the receiver tells the discovery task to unregister and end.
        drop(inputs);
        if let Some(task) = discovery {
            if tokio::time::timeout(UNREGISTER_WAIT, task).await.is_err() {
                tracing::warn!("discovery did not stop within {UNREGISTER_WAIT:?}");
            }
        }
        if let Some(done) = done {
            let _ = done.send(());
        }
    }

    fn handle(&mut self, input: Input) {
        let now = self.clock.now();
        match input {
            Input::Command(command, reply) => {
                if let Command::Join(peers) = &command {
                    peers.iter().for_each(|p| self.note_peer(&p.name, p.addr));
                }
                let result = self.node.handle_command(now, command);
                let _ = reply.send(result);
            }
            Input::Discovered(peers) => {
                peers.iter().for_each(|p| self.note_peer(&p.name, p.addr));
                self.node.handle_discovered(now, &peers);
            }
            Input::Verbose(reply) => {
                let report = self.since.report(
                    self.node.status(),
                    self.node.identity(),
                    self.node.member_states(),
                    &self.clock,
                );
                let _ = reply.send(report);
            }
            Input::Monitor { since_start, reply } => {
                // Subscribing here, between two inputs, makes the replay
                // and the live events meet exactly.
                let live = self.recorded.subscribe();
                let (replay, dropped) = if since_start {
                    self.history.snapshot()
                } else {
                    (Vec::new(), 0)
                };
                let _ = reply.send(EventStream {
                    replay,
                    dropped,
                    live,
                });
            }
            Input::Status(reply) => {
                let _ = reply.send(self.node.status());
            }
            Input::Stats(reply) => {
                let (counters, strategy) = &self.discovery_stats;
                let id = self.node.identity();
                let _ = reply.send(AgentStats {
                    node: *self.node.stats(),
                    transport: self.transport.stats(),
                    connections_open: self.transport.connections_open(),
                    members: self.node.member_counts(),
                    generation: id.generation(),
                    renewal: id.renewal(),
                    incarnation: self.node.incarnation(),
                    discovery: counters.read(strategy),
                });
            }
            // The loop itself handles shutdown; nothing reaches here.
            Input::Shutdown { .. } => {}
        }
    }

    /// Sends every datagram and reports every event the last input produced.
    async fn drain(&mut self) {
        while let Some(t) = self.node.poll_transmit() {
            self.transport.send(t.to, &t.payload).await;
        }
        let now = self.clock.now();
        while let Some(event) = self.node.poll_event() {
            log_event(&event);
            self.follow_members(&event);
            self.since.follow(&event, now);
            let recorded = self.history.record(self.clock.wall(now), event.clone());
            // No subscriber is fine.
            let _ = self.recorded.send(recorded);
            let _ = self.events.send(event);
        }
        self.since
            .follow_self(self.node.identity(), self.node.has_left(), now);
        self.request_discovery();
        let count = self.node.num_members();
        self.members.send_if_modified(|n| {
            let changed = *n != count;
            *n = count;
            changed
        });
        let left = self.node.has_left();
        self.left.send_if_modified(|l| {
            let changed = *l != left;
            *l = left;
            changed
        });
    }
}

impl<T: Transport> Driver<T> {
    /// Carries the node's request for seeds, if it made one, to the
    /// discovery task. Never waits: with a request already waiting there,
    /// this one merges into it.
    fn request_discovery(&mut self) {
        if self.node.poll_discover() {
            let _ = self.discover.try_send(());
        }
    }

    /// Tells the transport the host a peer's name gives for its address
    /// (QUIC checks a domain host against the certificate's DNS names; an
    /// IP host is checked as the address itself), and remembers it.
    fn note_peer(&mut self, name: &NodeName, addr: SocketAddr) {
        if let Host::Domain(host) = name.host() {
            self.transport.set_peer_host(addr, host);
        }
        if self.addrs.len() < MAX_REMEMBERED || self.addrs.contains_key(name) {
            self.addrs.insert(name.clone(), addr);
        }
    }

    /// Keeps the transport's peers in step with the membership: a member
    /// removed (left, force-left, cleaned after autoclean) has its
    /// connection closed.
    fn follow_members(&mut self, event: &Event) {
        match event {
            Event::MemberUp(id) | Event::MemberRenewed { new: id, .. } => {
                self.note_peer(id.name(), id.addr());
            }
            Event::MemberLeft(id) | Event::NodeForceLeft(id) => {
                self.addrs.remove(id.name());
                self.transport.forget(id.addr());
            }
            Event::NodeCleaned(name) => {
                if let Some(addr) = self.addrs.remove(name) {
                    self.transport.forget(addr);
                }
            }
            _ => {}
        }
    }
}

async fn sleep_until(wake: Option<tokio::time::Instant>) {
    match wake {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

fn log_event(event: &Event) {
    match event {
        Event::MemberUp(id) => tracing::info!("member up: {id}"),
        Event::MemberDown(id) => tracing::info!("member down: {id}"),
        Event::MemberSuspect(id) => tracing::info!("member suspect: {id}"),
        Event::MemberAlive(id) => tracing::info!("member alive again (refuted): {id}"),
        Event::MemberRenewed { old, new } => tracing::info!(
            "member renewed: {new} (version {:?} -> {:?})",
            old.version(),
            new.version()
        ),
        Event::Joined => tracing::info!("in a cluster"),
        Event::Alone => tracing::info!("alone: no active members"),
        Event::SelfRenewed(id) => {
            tracing::info!(
                "declared down by the cluster; rejoining as version {:?}",
                id.version()
            )
        }
        Event::MemberLeft(id) => tracing::info!("member left: {id}"),
        Event::NodeForceLeft(id) => tracing::info!("force-left: {id}"),
        Event::NodeCleaned(name) => tracing::info!("cleaned (down longer than autoclean): {name}"),
        Event::PartitionDetected { peer } => {
            tracing::warn!("partition detected: {peer} is on the other side")
        }
        Event::PartitionHealed { peer } => tracing::info!("partition healed with {peer}"),
        Event::Rejoined { id, lost_partition } => tracing::info!(
            "rejoined the cluster as version {:?}{}",
            id.version(),
            if *lost_partition {
                " (this side lost the partition: resync application data)"
            } else {
                ""
            }
        ),
        #[allow(unreachable_patterns)]
        other => tracing::info!("{other:?}"),
    }
}
