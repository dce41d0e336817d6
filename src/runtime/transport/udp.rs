//! The UDP transport: one socket at the node's gossip address.

use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;

use tokio::io::Interest;
use tokio::net::UdpSocket;

use super::{errqueue, Received, Transport, TransportStats};

/// A UDP socket with drop accounting.
#[derive(Debug)]
pub struct UdpTransport {
    socket: UdpSocket,
    local: SocketAddr,
    stats: TransportStats,
    /// Unreachable destinations read from the error queue, not yet handed
    /// out.
    unreachable: VecDeque<SocketAddr>,
}

/// The receive buffer the transport asks the kernel for. When a cluster
/// forms, every new node announces to the same seed at once; the default
/// buffer (about 200 KiB, a hundred loopback datagrams) overflowed at 200
/// nodes and the dropped announces waited for a retry. The kernel caps the
/// request at `net.core.rmem_max`; a refusal is not an error.
pub const RECV_BUFFER: usize = 4 << 20;

impl UdpTransport {
    /// Binds a UDP socket at `addr` (the caller picks the node's host address
    /// or the unspecified address, and the gossip port), with a receive
    /// buffer of [`RECV_BUFFER`] where the kernel allows it, and the error
    /// queue on (see [`errqueue`]; a refusal is logged, not an error).
    pub async fn bind(addr: SocketAddr) -> io::Result<Self> {
        let raw = socket2::Socket::new(
            socket2::Domain::for_address(addr),
            socket2::Type::DGRAM,
            Some(socket2::Protocol::UDP),
        )?;
        let _ = raw.set_recv_buffer_size(RECV_BUFFER);
        if let Err(e) = errqueue::enable(&raw, addr.is_ipv6()) {
            tracing::warn!(error = %e, "no ICMP errors on the gossip socket: crashes are detected by timeout only");
        }
        raw.set_nonblocking(true)?;
        raw.bind(&addr.into())?;
        let socket = UdpSocket::from_std(raw.into())?;
        let local = socket.local_addr()?;
        Ok(Self {
            socket,
            local,
            stats: TransportStats::default(),
            unreachable: VecDeque::new(),
        })
    }
}

impl UdpTransport {
    fn read_errors(&mut self) {
        self.stats.other_errors += errqueue::drain(&self.socket, &mut self.unreachable);
    }
}

impl Transport for UdpTransport {
    fn local_addr(&self) -> SocketAddr {
        self.local
    }

    async fn recv(&mut self, buf: &mut [u8]) -> Received {
        loop {
            if let Some(to) = self.unreachable.pop_front() {
                self.stats.unreachable += 1;
                return Received::Unreachable(to);
            }
            let ready = match self
                .socket
                .ready(Interest::READABLE | Interest::ERROR)
                .await
            {
                Ok(ready) => ready,
                Err(e) => {
                    self.stats.unreadable += 1;
                    tracing::debug!(error = %e, "gossip socket not pollable");
                    tokio::task::yield_now().await;
                    continue;
                }
            };
            if ready.is_error() {
                self.read_errors();
                continue;
            }
            match self.socket.try_recv_from(buf) {
                // A datagram that fills the buffer may have been truncated:
                // it is larger than the node accepts.
                Ok((n, from)) if n >= buf.len() => {
                    self.stats.too_large += 1;
                    tracing::debug!(%from, "dropped a datagram larger than max_datagram_size");
                }
                Ok((len, from)) => {
                    self.stats.received += 1;
                    return Received::Datagram { len, from };
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => {
                    // A queued ICMP error surfaces here too.
                    self.read_errors();
                    if self.unreachable.is_empty() {
                        self.stats.unreadable += 1;
                        tracing::debug!(error = %e, "dropped an unreadable datagram");
                        // Never spin on a socket that keeps failing.
                        tokio::task::yield_now().await;
                    }
                }
            }
        }
    }

    async fn send(&mut self, to: SocketAddr, payload: &[u8]) {
        // With the error queue on, an ICMP error about an earlier datagram
        // (port unreachable from a crashed member) is also left pending on
        // the socket, and the kernel fails the next send with it, whatever
        // its destination, without sending. That send clears it: the queue
        // is read (the report is evidence for the node) and the datagram
        // tried once more; only a second failure is this datagram's own.
        let mut result = self.socket.send_to(payload, to).await;
        if let Err(e) = &result {
            tracing::trace!(%to, error = %e, "send failed; trying once more");
            self.read_errors();
            result = self.socket.send_to(payload, to).await;
        }
        match result {
            Ok(_) => self.stats.sent += 1,
            Err(e) => {
                self.stats.send_errors += 1;
                tracing::debug!(%to, error = %e, "could not send a datagram");
            }
        }
    }

    fn stats(&self) -> TransportStats {
        self.stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two transports on loopback, each on a port of its own.
    async fn pair() -> (UdpTransport, UdpTransport) {
        let bind = || UdpTransport::bind("127.0.0.1:0".parse().unwrap());
        (bind().await.unwrap(), bind().await.unwrap())
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_datagram_sent_right_after_one_to_a_closed_port_still_goes_out() {
        let (mut a, mut b) = pair().await;
        // A port nobody listens on: the kernel answers port unreachable.
        let closed = {
            let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
            s.local_addr().unwrap()
        };
        let to = a.local_addr();
        let mut buf = vec![0; 64];
        for round in 0..3u8 {
            b.send(closed, &[0; 10]).await;
            // Loopback delivers the ICMP error before the send returns;
            // wait a little all the same so that it is surely pending.
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            b.send(to, &[round; 10]).await;
            let got = tokio::time::timeout(std::time::Duration::from_secs(5), a.recv(&mut buf))
                .await
                .expect("the datagram after the unreachable one arrives");
            assert!(matches!(got, Received::Datagram { len: 10, .. }), "{got:?}");
            assert_eq!(buf[0], round);
        }
        assert_eq!(b.stats().send_errors, 0);
        assert_eq!(b.stats().sent, 6);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_datagram_larger_than_the_buffer_allows_is_counted_and_skipped() {
        let (mut a, mut b) = pair().await;
        let to = a.local_addr();
        b.send(to, &[7; 600]).await;
        b.send(to, &[8; 100]).await;
        // A node with max_datagram_size 512 reads into 513 bytes.
        let mut buf = vec![0; 513];
        let got = a.recv(&mut buf).await;
        assert_eq!(
            got,
            Received::Datagram {
                len: 100,
                from: b.local_addr()
            }
        );
        assert_eq!(buf[0], 8);
        assert_eq!(a.stats().too_large, 1);
        assert_eq!(a.stats().received, 1);
        assert_eq!(b.stats().sent, 2);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_datagram_of_exactly_the_limit_is_delivered() {
        let (mut a, mut b) = pair().await;
        b.send(a.local_addr(), &[1; 512]).await;
        let mut buf = vec![0; 513];
        assert!(matches!(
            a.recv(&mut buf).await,
            Received::Datagram { len: 512, .. }
        ));
        assert_eq!(a.stats().too_large, 0);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_datagram_to_a_closed_port_comes_back_as_unreachable() {
        let (mut a, b) = pair().await;
        // A port where nothing listens any more.
        let gone = b.local_addr();
        drop(b);
        a.send(gone, b"anyone?").await;
        let mut buf = vec![0; 64];
        let got = tokio::time::timeout(std::time::Duration::from_secs(5), a.recv(&mut buf))
            .await
            .expect("no word from the network within 5 s");
        assert_eq!(got, Received::Unreachable(gone));
        assert_eq!(a.stats().unreachable, 1);
    }
}
