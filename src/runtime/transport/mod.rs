//! How datagrams leave and arrive: a small trait, so QUIC can sit beside UDP.
//!
//! The driver owns one [`Transport`] and calls [`Transport::recv`] inside a
//! `tokio::select!`, so `recv` must be cancel-safe: dropping its future before
//! it completes must lose no datagram. Errors never reach the driver: each
//! transport counts what it drops in [`TransportStats`] and keeps going.
//!
//! | file | concept |
//! |------|---------|
//! | [`udp`] | one UDP socket at the gossip address |
//! | [`errqueue`] | a gossip socket's ICMP errors (UDP and QUIC): port unreachable as evidence |
//! | `quic` | QUIC datagrams on long-lived connections (feature `quic`) |
//! | `tls` | the QUIC transport's certificates, `[cluster.quic]` (feature `quic`) |
//! | [`memory`] | an in-process network for tests and examples |

use std::future::Future;
use std::net::SocketAddr;

pub mod errqueue;
pub mod memory;
#[cfg(feature = "quic")]
pub mod quic;
#[cfg(feature = "quic")]
pub mod tls;
pub mod udp;

pub use memory::{MemoryNetwork, MemoryTransport};
#[cfg(feature = "quic")]
pub use quic::{QuicOptions, QuicTransport};
#[cfg(feature = "quic")]
pub use tls::{QuicCertConfig, QuicTls, TlsError, Verify};
pub use udp::UdpTransport;

/// The largest payload of one UDP datagram over IPv4: 65,535 bytes less the
/// 20-byte IPv4 header and the 8-byte UDP header. The kernel refuses larger
/// ones (IPv6 allows 48 bytes more without jumbograms; the IPv4 figure is
/// the one every UDP path carries).
pub const MAX_UDP_PAYLOAD: usize = 65_507;

/// What a transport received, sent and dropped.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct TransportStats {
    /// Datagrams handed to the node.
    pub received: u64,
    /// Datagrams dropped because they were larger than `max_datagram_size`.
    pub too_large: u64,
    /// Receive errors (a datagram that could not be read), each dropped.
    pub unreadable: u64,
    /// Datagrams sent.
    pub sent: u64,
    /// Datagrams the operating system refused to send, each dropped.
    pub send_errors: u64,
    /// Reports that a destination had no process at its port (ICMP port
    /// unreachable), handed to the node as evidence.
    pub unreachable: u64,
    /// Other errors the network reported about sent datagrams (counted only).
    pub other_errors: u64,
    /// Handshakes refused for TLS reasons (a certificate from another CA,
    /// expired, missing, naming another host; a foreign ALPN), in either
    /// direction. QUIC only.
    pub handshakes_refused: u64,
    /// Datagrams dropped because the bounded queue of a peer whose
    /// connection was still being made was full, or because the connection
    /// could not be made. QUIC only.
    pub queue_dropped: u64,
    /// Datagrams not sent because they were larger than the connection
    /// carries (see [`Transport::max_payload`]). QUIC and memory.
    pub too_large_sent: u64,
    /// Incoming connections refused because the connection table was full,
    /// or too many handshakes were in flight. QUIC only.
    pub connections_refused: u64,
}

/// What [`Transport::recv`] got.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Received {
    /// A datagram of this length, from this sender, is in the buffer.
    Datagram {
        /// Its length.
        len: usize,
        /// Its sender.
        from: SocketAddr,
    },
    /// The network says nothing listens at this address any more (see
    /// [`errqueue`]).
    Unreachable(SocketAddr),
}

/// A datagram transport bound to the node's gossip address.
pub trait Transport: Send + 'static {
    /// The address the transport is bound to.
    fn local_addr(&self) -> SocketAddr;

    /// Waits for the next readable datagram no larger than `buf.len() - 1`
    /// bytes, writes it into `buf` and returns its length and sender; or for
    /// word from the network that a destination is unreachable. Larger
    /// datagrams (they fill the whole buffer) and receive errors are counted
    /// and skipped. Cancel-safe.
    fn recv(&mut self, buf: &mut [u8]) -> impl Future<Output = Received> + Send;

    /// Sends one datagram; a failure is counted, not returned.
    fn send(&mut self, to: SocketAddr, payload: &[u8]) -> impl Future<Output = ()> + Send;

    /// Counters so far.
    fn stats(&self) -> TransportStats;

    /// The largest datagram the transport always carries, to any peer, from
    /// the first datagram on: the node's `max_datagram_size` (the sealed
    /// envelope included) must not exceed it. The default is UDP's,
    /// [`MAX_UDP_PAYLOAD`]; transports with a smaller limit override it.
    fn max_payload(&self) -> usize {
        MAX_UDP_PAYLOAD
    }

    /// Connections open now (a gauge, beside the counters of
    /// [`Transport::stats`]). Connectionless transports: 0.
    fn connections_open(&self) -> usize {
        0
    }

    /// The member at `addr` is gone (down past autoclean, left, force-left):
    /// the transport may release what it holds for it (QUIC closes its
    /// connection). A later send to `addr` starts afresh. The default does
    /// nothing.
    fn forget(&mut self, addr: SocketAddr) {
        let _ = addr;
    }

    /// The member at `addr` is named for `host` (its node name's host, a DNS
    /// name or an IP address): QUIC checks the peer's certificate against
    /// it instead of the address's IP. The default does nothing.
    fn set_peer_host(&mut self, addr: SocketAddr, host: &str) {
        let _ = (addr, host);
    }
}
