//! [`Agent`]: a real node over UDP or QUIC, and [`AgentHandle`], the way to talk to it.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use rollcall::runtime::{Agent, AgentConfig};
//!
//! let config = AgentConfig::new("rc@127.0.0.1".parse()?);
//! let agent = Agent::start(config).await?;
//! let handle = agent.handle();
//! let mut events = handle.subscribe();
//! handle.join(&"rc1@127.0.0.1".parse()?).await?;
//! while let Ok(event) = events.recv().await {
//!     println!("{event:?}");
//! }
//! # Ok(()) }
//! ```

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use super::addressing::{Addressing, AddressingError, TransportKind};
use super::clock::Clock;
use super::config::{AgentConfig, DiscoveryStrategy};
use super::discovery::{self, resolve_peer, AddrFamily, Discovery, DiscoveryError, ResolveError};
use super::driver::Driver;
use super::history::History;
use super::inputs::Input;
use super::monitor::EventStream;
use super::stats::{AgentStats, DiscoveryCounters};
use super::transport::{Transport, UdpTransport};
use super::verbose::{Since, VerboseStatus};
use crate::core::name::PortError;
use crate::core::{
    Command, CommandError, ConfigError, Event, Node, NodeId, NodeName, Peer, Status, Time,
};

/// How many events a subscriber may fall behind before it misses some.
const EVENT_BUFFER: usize = 1024;
/// How many inputs may wait for the owner task.
const INPUT_BUFFER: usize = 256;

/// Why the agent could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// The configuration asks for something not built yet. Nothing started.
    #[error("{0}")]
    NotSupported(String),
    /// The discovery strategy could not be set up (a TLS file that cannot
    /// be read, an unreadable resolver configuration). Nothing started.
    #[error("discovery: {0}")]
    Discovery(#[from] DiscoveryError),
    /// The QUIC certificates could not be loaded (the message names the
    /// key and the file). Nothing started.
    #[cfg(feature = "quic")]
    #[error(transparent)]
    Tls(#[from] super::transport::TlsError),
    /// The QUIC endpoint could not be set up. Nothing started.
    #[cfg(feature = "quic")]
    #[error("cannot start QUIC at {addr}: {error}")]
    Quic {
        /// The address.
        addr: SocketAddr,
        /// Why.
        error: super::transport::quic::QuicError,
    },
    /// The gossip socket could not be bound. Nothing started.
    #[error("cannot bind the gossip socket at {addr}: {error}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        error: std::io::Error,
    },
    /// A node name gave no address.
    #[error(transparent)]
    Resolve(#[from] ResolveError),
    /// The port convention gave no port.
    #[error(transparent)]
    Port(#[from] PortError),
    /// The core refused the configuration. Nothing started.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The OS gave no randomness for the node's seed. Nothing started.
    #[error("cannot read OS randomness for the node seed: {0}")]
    Random(String),
    /// The node refused a command (its state is unchanged).
    #[error(transparent)]
    Command(#[from] CommandError),
    /// A join was sent but no member answered in time.
    #[error("unreachable node {node}: no member answered within {} s", waited.as_secs())]
    Unreachable {
        /// The node asked to join.
        node: NodeName,
        /// How long we waited.
        waited: Duration,
    },
    /// The agent's task has stopped.
    #[error("the agent has stopped")]
    Stopped,
    /// The agent did not stop in time and was aborted.
    #[error("the agent did not stop within {0:?}")]
    StopTimeout(Duration),
}

impl From<AddressingError> for AgentError {
    fn from(e: AddressingError) -> Self {
        match e {
            AddressingError::Port(e) => Self::Port(e),
            AddressingError::Resolve(e) => Self::Resolve(e),
        }
    }
}

/// A running node: one task owns the [`Node`], a second polls discovery.
///
/// Call [`stop`](Self::stop) to leave the cluster and end it. Dropping the
/// `Agent` ends it abruptly, as a crash would (no leave); its
/// [`AgentHandle`]s then answer [`AgentError::Stopped`].
#[derive(Debug)]
pub struct Agent {
    handle: AgentHandle,
    task: JoinHandle<()>,
}

/// A cheap, cloneable way to talk to a running agent.
#[derive(Clone, Debug)]
pub struct AgentHandle {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    inputs: mpsc::Sender<Input>,
    events: broadcast::Sender<Event>,
    members: watch::Receiver<usize>,
    name: NodeName,
    local_addr: SocketAddr,
    base_port: u16,
    family: AddrFamily,
}

impl Agent {
    /// Starts a node with the discovery strategy its configuration names.
    ///
    /// Fails without starting anything if the strategy or protocol is not
    /// built yet, the gossip socket cannot be bound, or the configuration is
    /// invalid. Logs a warning if the default cookie is in use.
    pub async fn start(config: AgentConfig) -> Result<Self, AgentError> {
        let addressing = Addressing::resolve(&config).await?;
        let family = addressing.family;
        match config.discovery.clone() {
            DiscoveryStrategy::Manual => {
                Self::start_resolved(config, addressing, discovery::Manual).await
            }
            DiscoveryStrategy::Static { seeds } => {
                let seeds = discovery::StaticSeeds::new(seeds, config.base_port, family);
                Self::start_resolved(config, addressing, seeds).await
            }
            #[cfg(feature = "dns")]
            DiscoveryStrategy::Dns(dns) => {
                let dns = discovery::Dns::new(dns, config.name.clone(), config.base_port, family)
                    .map_err(DiscoveryError::from)?;
                Self::start_resolved(config, addressing, dns).await
            }
            #[cfg(feature = "etcd")]
            DiscoveryStrategy::Etcd(etcd) => {
                let etcd = discovery::Etcd::new(
                    etcd,
                    &config.cluster_name,
                    config.name.clone(),
                    addressing.advertised,
                    config.base_port,
                    family,
                )
                .map_err(DiscoveryError::from)?;
                Self::start_resolved(config, addressing, etcd).await
            }
            #[cfg(feature = "k8s")]
            DiscoveryStrategy::K8s(k8s) => {
                let k8s = discovery::K8s::new(k8s, config.name.clone(), config.base_port)
                    .map_err(DiscoveryError::from)?;
                Self::start_resolved(config, addressing, k8s).await
            }
            #[allow(unreachable_patterns)]
            other => Err(AgentError::NotSupported(format!(
                "discovery strategy {0} is not in this build (cargo feature `{0}`)",
                other.name()
            ))),
        }
    }

    /// Starts a node that finds its seeds with `discovery` (whatever the
    /// configuration's strategy says).
    pub async fn start_with<D: Discovery>(
        config: AgentConfig,
        discovery: D,
    ) -> Result<Self, AgentError> {
        let addressing = Addressing::resolve(&config).await?;
        Self::start_resolved(config, addressing, discovery).await
    }

    /// Binds the transport `addressing` names and starts the node on it.
    async fn start_resolved<D: Discovery>(
        config: AgentConfig,
        addressing: Addressing,
        discovery: D,
    ) -> Result<Self, AgentError> {
        config.core_config().validate()?;
        let bind = addressing.bind;
        match addressing.transport {
            TransportKind::Udp => {
                let transport = UdpTransport::bind(bind)
                    .await
                    .map_err(|error| AgentError::Bind { addr: bind, error })?;
                Self::launch(config, addressing, transport, discovery)
            }
            #[cfg(feature = "quic")]
            TransportKind::Quic => {
                use super::transport::{QuicOptions, QuicTls, QuicTransport};
                let tls = QuicTls::load(&config.quic, config.name.host_str())?;
                let options = QuicOptions {
                    reset_secret: Some(reset_secret(&config, addressing.advertised)),
                    ..QuicOptions::default()
                };
                let transport = QuicTransport::bind(bind, &tls, options)
                    .await
                    .map_err(|error| AgentError::Quic { addr: bind, error })?;
                tracing::info!(
                    "QUIC with {} ({}); datagrams up to {} bytes",
                    tls.verify(),
                    if tls.is_self_signed() {
                        "a self-signed certificate"
                    } else {
                        "certificates from cluster.quic"
                    },
                    transport.max_payload()
                );
                Self::launch(config, addressing, transport, discovery)
            }
            #[cfg(not(feature = "quic"))]
            TransportKind::Quic => Err(AgentError::NotSupported(format!(
                "cluster.proto_dist {} is not in this build (cargo feature `quic`)",
                config.proto_dist
            ))),
        }
    }

    /// Starts the owner task on a bound `transport`, and the discovery task.
    fn launch<T: Transport, D: Discovery>(
        config: AgentConfig,
        addressing: Addressing,
        transport: T,
        discovery: D,
    ) -> Result<Self, AgentError> {
        let mut core = config.core_config();
        // The transport may carry less than UDP (QUIC: 1,414 bytes from a
        // connection's first packet): foca's packets and sync chunks are
        // sized to what it always carries.
        core.max_datagram_size = core.max_datagram_size.min(transport.max_payload());
        core.validate()?;
        let local_addr = transport.local_addr();
        // An ephemeral bind port (0) is the real port.
        let advertised = match addressing.advertised {
            a if a.port() == 0 => SocketAddr::new(a.ip(), local_addr.port()),
            a => a,
        };
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|e| AgentError::Random(e.to_string()))?;
        let identity = NodeId::new(config.name.clone(), advertised, generation());
        let since = Since::new(&identity, Time::ZERO);
        let node = Node::new(identity, core, seed)?;
        if config.cookie.is_default() {
            tracing::warn!(
                "node.cookie is the default cookie: anyone who knows rollcall can join; set a secret one"
            );
        }
        tracing::info!(
            "node {} gossiping over {} on {local_addr} (advertised as {advertised}), discovery: {}",
            config.name,
            config.proto_dist,
            discovery.name()
        );

        let (inputs_tx, inputs_rx) = mpsc::channel(INPUT_BUFFER);
        let (events_tx, _) = broadcast::channel(EVENT_BUFFER);
        let (recorded_tx, _) = broadcast::channel(EVENT_BUFFER);
        let (members_tx, members_rx) = watch::channel(0usize);
        let (left_tx, left_rx) = watch::channel(false);
        // One request waits while another is answered; more merge into it.
        let (discover_tx, discover_rx) = mpsc::channel(1);
        let counters = Arc::new(DiscoveryCounters::default());
        let strategy = discovery.name();
        let discovery_task = tokio::spawn(discovery::task::run(
            discovery,
            discover_rx,
            inputs_tx.clone(),
            left_rx,
            Arc::clone(&counters),
        ));
        let driver = Driver {
            node,
            transport,
            clock: Clock::new(),
            inputs: inputs_rx,
            events: events_tx.clone(),
            recorded: recorded_tx,
            history: History::default(),
            since,
            members: members_tx,
            left: left_tx,
            discover: discover_tx,
            discovery: Some(discovery_task),
            addrs: Default::default(),
            discovery_stats: (counters, strategy),
        };
        let task = tokio::spawn(driver.run());
        let handle = AgentHandle {
            shared: Arc::new(Shared {
                inputs: inputs_tx,
                events: events_tx,
                members: members_rx,
                name: config.name.clone(),
                local_addr,
                base_port: config.base_port,
                family: addressing.family,
            }),
        };
        Ok(Self { handle, task })
    }

    /// A handle to the running node.
    pub fn handle(&self) -> AgentHandle {
        self.handle.clone()
    }

    /// Stops the node: leaves the cluster first if `leave` (and it has not
    /// left already), sends what that produced, and ends the task. Gives up
    /// and aborts the task after `within`.
    pub async fn stop(mut self, leave: bool, within: Duration) -> Result<(), AgentError> {
        let result = tokio::time::timeout(within, async {
            // An error means the task already ended; wait for it below.
            let _ = self.handle.shutdown(leave).await;
            (&mut self.task).await.map_err(|_| AgentError::Stopped)
        })
        .await;
        match result {
            Ok(r) => r,
            Err(_) => {
                self.task.abort();
                Err(AgentError::StopTimeout(within))
            }
        }
    }

    /// Waits until the node's task ends (after a shutdown, or if it failed).
    pub async fn stopped(&mut self) {
        let _ = (&mut self.task).await;
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        // Ends the owner task (a no-op after `stop`); discovery follows.
        self.task.abort();
    }
}

impl AgentHandle {
    /// The node's name.
    pub fn name(&self) -> &NodeName {
        &self.shared.name
    }

    /// The address the gossip socket is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.shared.local_addr
    }

    /// Membership events from now on. A subscriber that falls more than
    /// 1024 events behind gets `RecvError::Lagged` and misses the oldest.
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.shared.events.subscribe()
    }

    /// How many active members the node knows, itself excluded.
    pub fn num_members(&self) -> usize {
        *self.shared.members.borrow()
    }

    /// Running and stopped nodes, as this node sees them.
    pub async fn status(&self) -> Result<Status, AgentError> {
        self.ask(Input::Status).await
    }

    /// Running and stopped nodes, and every node's state, generation,
    /// address and since when it is in that state.
    pub async fn verbose_status(&self) -> Result<VerboseStatus, AgentError> {
        self.ask(Input::Verbose).await
    }

    /// Membership events, numbered and dated, from now on; with
    /// `since_start`, after a copy of the last
    /// [`HISTORY_LEN`](super::history::HISTORY_LEN) events the agent
    /// reported. A receiver that falls more than 1024 events behind gets
    /// `RecvError::Lagged` and misses the oldest; the agent never waits
    /// for it.
    pub async fn monitor(&self, since_start: bool) -> Result<EventStream, AgentError> {
        self.ask(|reply| Input::Monitor { since_start, reply })
            .await
    }

    /// Every counter: traffic, drops, probes, suspicions, sync, autoheal,
    /// autoclean, discovery; members by state; the identity's version.
    pub async fn stats(&self) -> Result<AgentStats, AgentError> {
        self.ask(Input::Stats).await
    }

    /// Carries out a command on the node.
    pub async fn command(&self, command: Command) -> Result<(), AgentError> {
        self.ask(|reply| Input::Command(command, reply)).await??;
        Ok(())
    }

    /// Where `node` gossips, by the port convention (and DNS for a domain).
    pub async fn resolve(&self, node: &NodeName) -> Result<Peer, AgentError> {
        Ok(resolve_peer(node, self.shared.base_port, self.shared.family).await?)
    }

    /// Asks `node` to let this node in (the request runs on the joining
    /// node). Refused if this node is already in a cluster.
    pub async fn join(&self, node: &NodeName) -> Result<(), AgentError> {
        let peer = self.resolve(node).await?;
        self.command(Command::Join(vec![peer])).await
    }

    /// [`join`](Self::join), then waits up to `within` for a member to
    /// answer; returns the status then, or [`AgentError::Unreachable`].
    pub async fn join_and_wait(
        &self,
        node: &NodeName,
        within: Duration,
    ) -> Result<Status, AgentError> {
        let mut members = self.shared.members.clone();
        self.join(node).await?;
        let answered = tokio::time::timeout(within, members.wait_for(|n| *n > 0))
            .await
            .map(|r| r.is_ok());
        match answered {
            Ok(true) => self.status().await,
            Ok(false) => Err(AgentError::Stopped),
            Err(_) => Err(AgentError::Unreachable {
                node: node.clone(),
                waited: within,
            }),
        }
    }

    /// Tells the cluster this node is leaving, then stops gossiping. The
    /// agent keeps running; a later [`join`](Self::join) rejoins.
    pub async fn leave(&self) -> Result<(), AgentError> {
        self.command(Command::Leave).await
    }

    /// Declares `node` down everywhere (usually a dead node).
    pub async fn force_leave(&self, node: NodeName) -> Result<(), AgentError> {
        self.command(Command::ForceLeave(node)).await
    }

    /// Asks the owner task to stop (leaving first if `leave`) and waits
    /// until it has sent its last datagram.
    pub async fn shutdown(&self, leave: bool) -> Result<(), AgentError> {
        self.ask(|done| Input::Shutdown { leave, done }).await
    }

    async fn ask<T>(
        &self,
        input: impl FnOnce(oneshot::Sender<T>) -> Input,
    ) -> Result<T, AgentError> {
        let (tx, rx) = oneshot::channel();
        self.shared
            .inputs
            .send(input(tx))
            .await
            .map_err(|_| AgentError::Stopped)?;
        rx.await.map_err(|_| AgentError::Stopped)
    }
}

/// The key of this node's QUIC stateless resets, the same across restarts
/// (so a restarted process resets its predecessor's connections and peers
/// reconnect at once): HKDF-SHA256 of the cookie, bound to the cluster
/// and the node's address.
#[cfg(feature = "quic")]
fn reset_secret(config: &AgentConfig, advertised: SocketAddr) -> [u8; 32] {
    let hk = hkdf::Hkdf::<sha2::Sha256>::new(
        Some(b"rollcall quic stateless reset"),
        config.cookie.as_bytes(),
    );
    let info = format!("{}/{}/{advertised}", config.cluster_name, config.name);
    let mut key = [0u8; 32];
    // 32 bytes is far below HKDF-SHA256's limit of 8,160.
    let _ = hk.expand(info.as_bytes(), &mut key);
    key
}

/// The generation: the start time in milliseconds since the Unix epoch, so
/// a restarted node outranks its earlier self.
fn generation() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::Profile;
    use crate::runtime::config::ProtoDist;

    fn config(name: &str) -> AgentConfig {
        let mut c = AgentConfig::new(name.parse().unwrap());
        c.profile = Profile::Local;
        c.base_port = 0;
        c
    }

    #[cfg(not(feature = "quic"))]
    #[tokio::test(flavor = "current_thread")]
    async fn quic_without_the_quic_feature_fails_at_start_with_a_clear_message() {
        let mut c = config("rc@127.0.0.1");
        c.proto_dist = ProtoDist::Quic;
        let e = Agent::start(c).await.unwrap_err();
        assert!(e.to_string().contains("cargo feature `quic`"), "{e}");
    }

    #[cfg(feature = "quic")]
    #[tokio::test(flavor = "current_thread")]
    async fn two_agents_over_quic_join_with_packets_sized_to_the_connection() {
        let start = |name| {
            let mut c = config(name);
            c.proto_dist = ProtoDist::Quic;
            Agent::start(c)
        };
        let (a, b) = (
            start("a@127.0.0.1").await.unwrap(),
            start("b@127.0.0.1").await.unwrap(),
        );
        let (ha, hb) = (a.handle(), b.handle());
        let peer = Peer::new(ha.name().clone(), ha.local_addr());
        hb.command(Command::Join(vec![peer])).await.unwrap();
        let joined = tokio::time::timeout(Duration::from_secs(10), async {
            while ha.num_members() == 0 || hb.num_members() == 0 {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
        assert!(joined.is_ok(), "the two QUIC agents did not meet");
        let stats = ha.stats().await.unwrap();
        assert!(stats.connections_open >= 1, "{stats:?}");
        assert_eq!(stats.transport.too_large_sent, 0);
        a.stop(false, Duration::from_secs(2)).await.unwrap();
        b.stop(false, Duration::from_secs(2)).await.unwrap();
    }

    #[tokio::test(flavor = "current_thread")]
    async fn dropping_the_agent_ends_it_and_its_handles_say_so() {
        let agent = Agent::start(config("rc@127.0.0.1")).await.unwrap();
        let handle = agent.handle();
        assert!(handle.status().await.is_ok());
        drop(agent);
        let stopped = tokio::time::timeout(Duration::from_secs(2), async {
            while handle.status().await.is_ok() {
                tokio::task::yield_now().await;
            }
        })
        .await;
        assert!(stopped.is_ok(), "the node outlived its Agent");
        assert!(matches!(handle.leave().await, Err(AgentError::Stopped)));
    }

    #[tokio::test(flavor = "current_thread")]
    async fn two_agents_join_see_each_other_and_report_a_leave() {
        // Port 0: the OS picks; join by address since the convention cannot.
        let a = Agent::start(config("a@127.0.0.1")).await.unwrap();
        let b = Agent::start(config("b@127.0.0.1")).await.unwrap();
        let (ha, hb) = (a.handle(), b.handle());
        let mut events = ha.subscribe();
        let peer = Peer::new(ha.name().clone(), ha.local_addr());
        hb.command(Command::Join(vec![peer])).await.unwrap();
        let up = tokio::time::timeout(Duration::from_secs(5), async {
            loop {
                if let Ok(Event::MemberUp(id)) = events.recv().await {
                    break id;
                }
            }
        })
        .await
        .unwrap();
        assert_eq!(up.name(), hb.name());
        let s = ha.status().await.unwrap();
        assert_eq!(s.running_nodes.len(), 2);
        assert!(matches!(
            hb.command(Command::Join(vec![Peer::new(
                ha.name().clone(),
                ha.local_addr()
            )]))
            .await,
            Err(AgentError::Command(CommandError::AlreadyInCluster))
        ));
        b.stop(true, Duration::from_secs(2)).await.unwrap();
        assert!(matches!(hb.status().await, Err(AgentError::Stopped)));
        let gone = tokio::time::timeout(Duration::from_secs(5), async {
            loop {
                if ha.num_members() == 0 {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
        assert!(gone.is_ok(), "a did not see b leave");
        a.stop(false, Duration::from_secs(2)).await.unwrap();
    }
}
