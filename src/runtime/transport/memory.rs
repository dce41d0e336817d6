//! An in-process network for tests and examples: a [`MemoryNetwork`] hub on
//! which [`MemoryTransport`]s bind socket addresses and exchange datagrams
//! over tokio channels.
//!
//! It behaves as UDP on a quiet loopback: datagrams up to
//! [`MEMORY_MAX_PAYLOAD`] bytes arrive whole and in order, each transport's
//! inbox holds [`MEMORY_INBOX`] datagrams (past it, like a full socket
//! buffer, datagrams are dropped and counted as send errors), and a datagram
//! to an address where nothing is bound is counted as sent and comes back to
//! the sender as [`Received::Unreachable`], as ICMP "port unreachable" does.
//! A transport that is dropped unbinds its address, which can then be bound
//! again (a restart).

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use tokio::sync::mpsc;

use super::{Received, Transport, TransportStats, MAX_UDP_PAYLOAD};

/// The largest datagram a memory transport carries: UDP's, so a node sized
/// for UDP runs unchanged.
pub const MEMORY_MAX_PAYLOAD: usize = MAX_UDP_PAYLOAD;

/// How many datagrams wait in a transport's inbox before new ones are
/// dropped.
pub const MEMORY_INBOX: usize = 1024;

/// Unreachable reports kept for the node at most; more are dropped.
const MAX_UNREACHABLE: usize = 64;

/// The first port handed out when a transport binds port 0.
const FIRST_EPHEMERAL_PORT: u16 = 49_152;

/// A datagram in flight: its sender and its bytes.
type Delivery = (SocketAddr, Bytes);

/// Why a memory transport could not bind.
#[derive(Debug, thiserror::Error)]
pub enum MemoryError {
    /// Another transport on this network is bound at the address.
    #[error("{0} is already bound on this memory network")]
    AddrInUse(SocketAddr),
    /// Port 0 was asked for and every ephemeral port of that IP is taken.
    #[error("no free port left on {0} on this memory network")]
    NoFreePort(std::net::IpAddr),
}

/// The hub: which address is bound by which transport. Cheap to clone; the
/// clones are one network.
#[derive(Clone, Debug, Default)]
pub struct MemoryNetwork {
    hub: Arc<Mutex<Hub>>,
}

#[derive(Debug, Default)]
struct Hub {
    bound: HashMap<SocketAddr, Binding>,
    next_id: u64,
}

#[derive(Debug)]
struct Binding {
    inbox: mpsc::Sender<Delivery>,
    id: u64,
}

impl MemoryNetwork {
    /// An empty network.
    pub fn new() -> Self {
        Self::default()
    }

    fn hub(&self) -> MutexGuard<'_, Hub> {
        // The hub's state stays consistent across a panic elsewhere: every
        // update is a single map operation.
        self.hub.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Binds a transport at `addr`; port 0 picks a free port of that IP.
    pub fn bind(&self, addr: SocketAddr) -> Result<MemoryTransport, MemoryError> {
        let mut hub = self.hub();
        let local = if addr.port() == 0 {
            (FIRST_EPHEMERAL_PORT..=u16::MAX)
                .map(|port| SocketAddr::new(addr.ip(), port))
                .find(|a| !hub.bound.contains_key(a))
                .ok_or(MemoryError::NoFreePort(addr.ip()))?
        } else if hub.bound.contains_key(&addr) {
            return Err(MemoryError::AddrInUse(addr));
        } else {
            addr
        };
        let (inbox, rx) = mpsc::channel(MEMORY_INBOX);
        hub.next_id += 1;
        let id = hub.next_id;
        hub.bound.insert(local, Binding { inbox, id });
        Ok(MemoryTransport {
            network: self.clone(),
            local,
            id,
            rx,
            unreachable: VecDeque::new(),
            stats: TransportStats::default(),
        })
    }

    /// The inbox bound at `to`, if any.
    fn inbox(&self, to: SocketAddr) -> Option<mpsc::Sender<Delivery>> {
        self.hub().bound.get(&to).map(|b| b.inbox.clone())
    }

    fn unbind(&self, addr: SocketAddr, id: u64) {
        let mut hub = self.hub();
        if hub.bound.get(&addr).is_some_and(|b| b.id == id) {
            hub.bound.remove(&addr);
        }
    }
}

/// One node's end of a [`MemoryNetwork`].
#[derive(Debug)]
pub struct MemoryTransport {
    network: MemoryNetwork,
    local: SocketAddr,
    id: u64,
    rx: mpsc::Receiver<Delivery>,
    unreachable: VecDeque<SocketAddr>,
    stats: TransportStats,
}

impl Drop for MemoryTransport {
    fn drop(&mut self) {
        self.network.unbind(self.local, self.id);
    }
}

impl Transport for MemoryTransport {
    fn local_addr(&self) -> SocketAddr {
        self.local
    }

    async fn recv(&mut self, buf: &mut [u8]) -> Received {
        loop {
            if let Some(to) = self.unreachable.pop_front() {
                self.stats.unreachable += 1;
                return Received::Unreachable(to);
            }
            // The network keeps a sender while this transport is bound, so
            // the channel never closes under it.
            let Some((from, bytes)) = self.rx.recv().await else {
                return std::future::pending().await;
            };
            if bytes.len() >= buf.len() {
                self.stats.too_large += 1;
                continue;
            }
            buf[..bytes.len()].copy_from_slice(&bytes);
            self.stats.received += 1;
            return Received::Datagram {
                len: bytes.len(),
                from,
            };
        }
    }

    async fn send(&mut self, to: SocketAddr, payload: &[u8]) {
        if payload.len() > MEMORY_MAX_PAYLOAD {
            self.stats.too_large_sent += 1;
            return;
        }
        let delivered = match self.network.inbox(to) {
            Some(inbox) => inbox.try_send((self.local, Bytes::copy_from_slice(payload))),
            None => Err(mpsc::error::TrySendError::Closed((
                self.local,
                Bytes::new(),
            ))),
        };
        match delivered {
            Ok(()) => self.stats.sent += 1,
            Err(mpsc::error::TrySendError::Full(_)) => self.stats.send_errors += 1,
            Err(mpsc::error::TrySendError::Closed(_)) => {
                self.stats.sent += 1;
                if self.unreachable.len() < MAX_UNREACHABLE {
                    self.unreachable.push_back(to);
                }
            }
        }
    }

    fn stats(&self) -> TransportStats {
        self.stats
    }

    fn max_payload(&self) -> usize {
        MEMORY_MAX_PAYLOAD
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn an_address_is_bound_once_and_free_again_when_its_transport_drops() {
        let net = MemoryNetwork::new();
        let a = net.bind(addr("10.0.0.1:4370")).unwrap();
        assert!(matches!(
            net.bind(addr("10.0.0.1:4370")),
            Err(MemoryError::AddrInUse(_))
        ));
        drop(a);
        assert!(net.bind(addr("10.0.0.1:4370")).is_ok());
    }

    #[test]
    fn port_zero_picks_distinct_free_ports() {
        let net = MemoryNetwork::new();
        let a = net.bind(addr("10.0.0.1:0")).unwrap();
        let b = net.bind(addr("10.0.0.1:0")).unwrap();
        assert_ne!(a.local_addr(), b.local_addr());
        assert_ne!(a.local_addr().port(), 0);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_datagram_to_an_unbound_address_comes_back_as_unreachable() {
        let net = MemoryNetwork::new();
        let mut a = net.bind(addr("10.0.0.1:1")).unwrap();
        a.send(addr("10.0.0.2:1"), b"anyone?").await;
        let mut buf = [0; 16];
        assert_eq!(
            a.recv(&mut buf).await,
            Received::Unreachable(addr("10.0.0.2:1"))
        );
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_full_inbox_drops_and_counts() {
        let net = MemoryNetwork::new();
        let _b = net.bind(addr("10.0.0.2:1")).unwrap();
        let mut a = net.bind(addr("10.0.0.1:1")).unwrap();
        for _ in 0..MEMORY_INBOX + 3 {
            a.send(addr("10.0.0.2:1"), b"x").await;
        }
        assert_eq!(a.stats().sent, MEMORY_INBOX as u64);
        assert_eq!(a.stats().send_errors, 3);
    }
}
