//! The QUIC transport: SWIM datagrams as QUIC unreliable datagrams (RFC
//! 9221) on long-lived, mutually authenticated connections (see [`tls`]).
//!
//! One quinn endpoint is bound at the gossip address and is both client and
//! server. The node still sees datagrams and socket addresses: the transport
//! maps a peer's address to its connection, opening one on the first
//! datagram for it.
//!
//! # Never waiting
//!
//! [`Transport::send`] hands the datagram to the peer's task (see `peer`)
//! and returns: it never waits on a handshake or a full buffer. While a
//! connection is being made, up to [`QuicOptions::pending_per_peer`] (32)
//! datagrams wait for it, and as many again may sit in the channel to the
//! peer's task; past that they are dropped and counted in `queue_dropped`,
//! as are those still waiting when the handshake fails or times out
//! ([`QuicOptions::handshake_timeout`], 5 s). [`Transport::recv`] reads one
//! channel fed by a reader task per connection, and is cancel-safe.
//!
//! # Sizes
//!
//! A QUIC connection carries datagrams up to its path MTU less 38 bytes of
//! packet and frame overhead. quinn starts at 1,200 (1,162-byte datagrams);
//! this transport starts every connection at [`DEFAULT_INITIAL_MTU`] =
//! 1,452 (Ethernet less IPv6 and UDP headers), so every connection carries
//! [`Transport::max_payload`] = 1,414 bytes from its first packet, and
//! quinn's MTU discovery may raise it later (the transport does not count on
//! that). The node's `max_datagram_size` must be at most `max_payload()`. A
//! datagram a connection cannot carry (larger than that, or after quinn's
//! black-hole detection fell back to 1,200 on a path with a smaller MTU) is
//! not sent: it is counted in `too_large_sent` and logged once.
//!
//! # Bounds
//!
//! - The connection table holds at most [`QuicOptions::max_connections`]
//!   (1,024) peers, each with at most two connections (the one it opened,
//!   the one it accepted: two nodes that start talking at once open one
//!   each; with a reset secret they close the spare as soon as both are
//!   up). An incoming connection from an address not in the table is
//!   refused when it is full (`connections_refused`); an outgoing one
//!   evicts the least recently used peer (a scan of the table, only when
//!   full). Entries whose connections all closed leave the table, so churn
//!   and restarts do not grow it.
//! - At most [`QuicOptions::max_incoming_handshakes`] (64) incoming
//!   handshakes run at once; past that unvalidated sources get a QUIC retry
//!   (spoofed sources never answer it) and the rest are refused. A
//!   connection enters the table only once its handshake completes, so
//!   spoofed or unknown sources cannot fill it.
//! - Each connection buffers 16 KiB of datagrams each way (see `config`);
//!   connections idle for [`QuicOptions::idle_timeout`] (60 s, no
//!   keep-alives) close.
//! - Refused peers are logged once per address, from a set of at most 1,024
//!   addresses.
//!
//! # Memory
//!
//! Measured with a counting allocator (40 loopback connections): an
//! endpoint holds 46 KiB of receive buffer (32 datagrams of 1,452 bytes, GRO
//! off; see `socket`), and each connection end about 33 KiB, nearly all of
//! it quinn's, rustls's and ring's own (quinn's per-connection event channel
//! alone is 6.7 KiB; packet and header keys 3 KiB); the peer task, its
//! channels and the reader task are about 2 KiB. An agent in a 50-member
//! cluster holds one connection per peer (the agent always sets a reset
//! secret, so races leave no spare). Most of an agent's
//! resident set is the binary's code, shared by every agent on the host:
//! QUIC touches about 1.7 MiB more of it than UDP.
//!
//! Accepted connections are filed in the table by [`Transport::recv`], which
//! the driver always has pending: a transport never polled with `recv`
//! completes incoming handshakes but does not read from them.
//!
//! # Peer names
//!
//! The client checks the server's certificate against the peer's host as
//! registered with [`Transport::set_peer_host`] (a DNS or IP subject
//! alternative name), else against the IP address it dials. A name
//! registered before the first datagram to the peer is used from the first
//! connection; one registered later, from the next connection on (a
//! connection refused for its name ends, and the next datagram opens a new
//! one).
//!
//! # Restarts
//!
//! A peer restarted on the same address is reached again at once: a lost
//! connection is dropped and the next datagram opens a new one; a new
//! connection accepted from an address replaces the accepted one held; and
//! with [`QuicOptions::reset_secret`] stable across restarts, the restarted
//! process answers its predecessor's connections with a stateless reset, so
//! peers drop them on their next datagram.
//!
//! # Port unreachable
//!
//! The endpoint's socket has the error queue on (see `socket`, and
//! [`errqueue`](super::errqueue)): a packet quinn sends to a port where
//! nothing listens any more (a peer's process crashed; its connection is
//! still held, or a handshake is being tried) comes back as
//! [`Received::Unreachable`] for that address, as over UDP, counted in
//! `unreachable`; other ICMP errors are counted in `other_errors`. Linux
//! only: elsewhere this transport never returns [`Received::Unreachable`].
//!
//! [`tls`]: super::tls

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::tls::QuicTls;
use super::{Received, Transport, TransportStats};

mod accept;
mod config;
mod peer;
mod shared;
mod socket;

pub use config::{max_payload_for, QuicOptions, DATAGRAM_OVERHEAD, DEFAULT_INITIAL_MTU, MIN_MTU};

use peer::PeerHandle;
use shared::{bump, Shared};

/// Host names registered with [`Transport::set_peer_host`] kept at most; the
/// driver forgets removed members, so this bounds only a leak.
const MAX_HOSTS: usize = 65_536;

/// Datagrams and notices waiting for [`Transport::recv`].
const INBOUND: usize = 1024;

/// What the transport's tasks hand to [`Transport::recv`].
#[derive(Debug)]
enum Inbound {
    /// A datagram from a connection with `from`.
    Datagram { from: SocketAddr, bytes: Bytes },
    /// A connection whose handshake completed, from the accept loop.
    Accepted(quinn::Connection),
    /// A peer task ended on its own (no connection left).
    PeerGone { addr: SocketAddr, id: u64 },
}

/// Why the QUIC transport could not start.
#[derive(Debug, thiserror::Error)]
pub enum QuicError {
    /// The socket could not be bound or set up.
    #[error("cannot bind the QUIC socket: {0}")]
    Io(#[from] io::Error),
    /// quinn refused the configuration.
    #[error("QUIC configuration: {0}")]
    Config(String),
}

/// A QUIC endpoint at the gossip address, with its connection table.
pub struct QuicTransport {
    endpoint: quinn::Endpoint,
    local: SocketAddr,
    options: QuicOptions,
    ctx: Arc<peer::Context>,
    peers: HashMap<SocketAddr, PeerHandle>,
    hosts: HashMap<SocketAddr, String>,
    inbound: mpsc::Receiver<Inbound>,
    reports: Arc<socket::Reports>,
    accept: JoinHandle<()>,
    errors: Option<JoinHandle<()>>,
    tick: u64,
    next_id: u64,
}

impl fmt::Debug for QuicTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("QuicTransport")
            .field("local", &self.local)
            .field("peers", &self.peers.len())
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl QuicTransport {
    /// Binds a QUIC endpoint at `addr` with the certificates of `tls`. Must
    /// be called inside a tokio runtime.
    pub async fn bind(
        addr: SocketAddr,
        tls: &QuicTls,
        options: QuicOptions,
    ) -> Result<Self, QuicError> {
        let built = config::build(tls, &options)?;
        let shared = Arc::new(Shared::default());
        let reports = Arc::new(socket::Reports::new(shared.clone()));
        let bound = socket::wrap(bind_socket(addr)?, reports.clone())?;
        let endpoint = quinn::Endpoint::new_with_abstract_socket(
            built.endpoint,
            Some(built.server),
            bound.socket,
            Arc::new(quinn::TokioRuntime),
        )?;
        let local = endpoint.local_addr()?;
        let (inbound_tx, inbound) = mpsc::channel(INBOUND);
        let accept = tokio::spawn(accept::run(
            endpoint.clone(),
            inbound_tx.clone(),
            shared.clone(),
            options.max_incoming_handshakes,
            options.handshake_timeout,
        ));
        let ctx = Arc::new(peer::Context {
            endpoint: endpoint.clone(),
            local,
            close_duplicates: options.reset_secret.is_some(),
            client: built.client,
            shared,
            inbound: inbound_tx,
            handshake_timeout: options.handshake_timeout,
            pending_per_peer: options.pending_per_peer,
        });
        Ok(Self {
            endpoint,
            local,
            options,
            ctx,
            peers: HashMap::new(),
            hosts: HashMap::new(),
            inbound,
            reports,
            accept,
            errors: bound.reader,
            tick: 0,
            next_id: 0,
        })
    }

    /// Peers in the connection table now (at most
    /// [`QuicOptions::max_connections`]).
    pub fn peers(&self) -> usize {
        self.peers.len()
    }

    /// The settings in force.
    pub fn options(&self) -> &QuicOptions {
        &self.options
    }

    /// The name the certificate of the peer at `addr` must carry: its
    /// registered host, else its IP address.
    fn server_name(&self, addr: SocketAddr) -> String {
        match self.hosts.get(&addr) {
            Some(host) => host.clone(),
            None => addr.ip().to_string(),
        }
    }

    fn spawn_peer(&mut self, addr: SocketAddr, accepted: Option<quinn::Connection>) -> PeerHandle {
        self.next_id += 1;
        peer::spawn(
            self.ctx.clone(),
            addr,
            self.next_id,
            self.server_name(addr),
            accepted,
            self.tick,
        )
    }

    /// Drops entries whose task has ended.
    fn purge_ended(&mut self) {
        self.peers.retain(|_, p| !p.data.is_closed());
    }

    /// Makes room for one more peer if the table is full: first by dropping
    /// ended entries, then (when `evict`) the least recently used one.
    /// Whether there is room.
    fn make_room(&mut self, evict: bool) -> bool {
        if self.peers.len() < self.options.max_connections {
            return true;
        }
        self.purge_ended();
        if self.peers.len() < self.options.max_connections {
            return true;
        }
        if !evict {
            return false;
        }
        let lru = self
            .peers
            .iter()
            .min_by_key(|(_, p)| p.last_used)
            .map(|(addr, _)| *addr);
        if let Some(addr) = lru {
            tracing::debug!(peer = %addr, "QUIC connection table full: evicted the least recently used peer");
            self.peers.remove(&addr);
        }
        self.peers.len() < self.options.max_connections
    }

    /// Files a connection whose handshake completed.
    fn adopt(&mut self, conn: quinn::Connection) {
        self.tick += 1;
        let addr = canonical(conn.remote_address());
        if let Some(p) = self.peers.get_mut(&addr) {
            p.last_used = self.tick;
            match p.accepted.try_send(conn) {
                Ok(()) => return,
                Err(mpsc::error::TrySendError::Full(conn)) => {
                    conn.close(peer::close::BUSY, b"");
                    bump(&self.ctx.shared.connections_refused);
                    return;
                }
                Err(mpsc::error::TrySendError::Closed(back)) => {
                    self.peers.remove(&addr);
                    return self.adopt_new(addr, back);
                }
            }
        }
        self.adopt_new(addr, conn);
    }

    fn adopt_new(&mut self, addr: SocketAddr, conn: quinn::Connection) {
        if !self.make_room(false) {
            conn.close(peer::close::BUSY, b"");
            bump(&self.ctx.shared.connections_refused);
            tracing::debug!(peer = %addr, "QUIC connection table full: refused an incoming connection");
            return;
        }
        let handle = self.spawn_peer(addr, Some(conn));
        self.peers.insert(addr, handle);
    }
}

impl Drop for QuicTransport {
    fn drop(&mut self) {
        self.accept.abort();
        if let Some(errors) = &self.errors {
            errors.abort();
        }
        self.endpoint.close(peer::close::GONE, b"");
    }
}

/// `addr` with an IPv4-mapped IPv6 address (as a dual-stack socket reports
/// IPv4 peers) written as IPv4, so a peer has one key in the table whichever
/// side opened the connection.
fn canonical(addr: SocketAddr) -> SocketAddr {
    SocketAddr::new(addr.ip().to_canonical(), addr.port())
}

/// A UDP socket at `addr` with the gossip receive buffer and the error
/// queue on (a refusal is logged, not an error).
fn bind_socket(addr: SocketAddr) -> io::Result<std::net::UdpSocket> {
    let raw = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::DGRAM,
        Some(socket2::Protocol::UDP),
    )?;
    let _ = raw.set_recv_buffer_size(super::udp::RECV_BUFFER);
    if let Err(e) = super::errqueue::enable(&raw, addr.is_ipv6()) {
        tracing::warn!(error = %e, "no ICMP errors on the QUIC socket: crashes are detected by timeout only");
    }
    raw.set_nonblocking(true)?;
    raw.bind(&addr.into())?;
    Ok(raw.into())
}

impl Transport for QuicTransport {
    fn local_addr(&self) -> SocketAddr {
        self.local
    }

    async fn recv(&mut self, buf: &mut [u8]) -> Received {
        loop {
            if let Some(to) = self.reports.pop() {
                bump(&self.ctx.shared.unreachable);
                return Received::Unreachable(to);
            }
            let inbound = tokio::select! {
                biased;
                () = self.reports.queued() => continue,
                inbound = self.inbound.recv() => inbound,
            };
            // The transport holds a sender itself: the channel never closes.
            let Some(inbound) = inbound else {
                return std::future::pending().await;
            };
            match inbound {
                Inbound::Datagram { from, bytes } => {
                    if bytes.len() >= buf.len() {
                        bump(&self.ctx.shared.too_large);
                        tracing::debug!(%from, "dropped a datagram larger than max_datagram_size");
                        continue;
                    }
                    buf[..bytes.len()].copy_from_slice(&bytes);
                    bump(&self.ctx.shared.received);
                    return Received::Datagram {
                        len: bytes.len(),
                        from,
                    };
                }
                Inbound::Accepted(conn) => self.adopt(conn),
                Inbound::PeerGone { addr, id } => {
                    if self.peers.get(&addr).is_some_and(|p| p.id == id) {
                        self.peers.remove(&addr);
                    }
                }
            }
        }
    }

    async fn send(&mut self, to: SocketAddr, payload: &[u8]) {
        let to = canonical(to);
        self.tick += 1;
        let mut bytes = Bytes::copy_from_slice(payload);
        if let Some(p) = self.peers.get_mut(&to) {
            p.last_used = self.tick;
            match p.data.try_send(bytes) {
                Ok(()) => return,
                Err(mpsc::error::TrySendError::Full(_)) => {
                    bump(&self.ctx.shared.queue_dropped);
                    return;
                }
                Err(mpsc::error::TrySendError::Closed(back)) => {
                    // The peer's task ended (its connections closed): start
                    // afresh.
                    self.peers.remove(&to);
                    bytes = back;
                }
            }
        }
        if !self.make_room(true) {
            bump(&self.ctx.shared.queue_dropped);
            return;
        }
        let handle = self.spawn_peer(to, None);
        if handle.data.try_send(bytes).is_err() {
            bump(&self.ctx.shared.queue_dropped);
        }
        self.peers.insert(to, handle);
    }

    fn stats(&self) -> TransportStats {
        self.ctx.shared.stats()
    }

    fn max_payload(&self) -> usize {
        self.options.max_payload()
    }

    /// Connections open now: opened and accepted, handshakes included.
    fn connections_open(&self) -> usize {
        self.endpoint.open_connections()
    }

    fn forget(&mut self, addr: SocketAddr) {
        let addr = canonical(addr);
        // Dropping the handle ends the peer's task, which closes its
        // connections.
        self.peers.remove(&addr);
        self.hosts.remove(&addr);
    }

    fn set_peer_host(&mut self, addr: SocketAddr, host: &str) {
        let addr = canonical(addr);
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if self.hosts.len() >= MAX_HOSTS && !self.hosts.contains_key(&addr) {
            tracing::debug!(peer = %addr, "too many peer host names: checking this peer by its IP address");
            return;
        }
        self.hosts.insert(addr, host.to_owned());
    }
}
