//! How datagrams leave and arrive: a small trait, so QUIC can sit beside UDP.
//!
//! The driver owns one [`Transport`] and calls [`Transport::recv`] inside a
//! `tokio::select!`, so `recv` must be cancel-safe: dropping its future before
//! it completes must lose no datagram. Errors never reach the driver: each
//! transport counts what it drops in [`TransportStats`] and keeps going.

use std::future::Future;
use std::net::SocketAddr;

pub mod errqueue;
pub mod udp;

pub use udp::UdpTransport;

/// What a transport received, sent and dropped.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
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
}
