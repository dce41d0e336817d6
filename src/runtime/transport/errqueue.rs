//! The gossip socket's error queue: evidence that a member's process is
//! gone.
//!
//! On Linux, with `IP_RECVERR` (`IPV6_RECVERR` for IPv6) set, a datagram
//! sent to a port where nothing listens comes back as an entry in the
//! socket's error queue (ICMP type 3 code 3, or ICMPv6 type 1 code 4: port
//! unreachable), naming the datagram's original destination. The transport
//! reads the queue when the socket polls with an error and hands each such
//! destination to the node as [`Node::handle_unreachable`]. Other errors
//! (host unreachable, fragmentation needed, ...) are read and counted, not
//! taken as evidence: a host that is down, or cut off, stays silent.
//!
//! The UDP transport reads its own socket's queue; the QUIC transport reads
//! the queue of the socket it gives quinn (see its `socket` module).
//!
//! Other systems: the option does not exist, nothing is read, and a crash is
//! detected by the suspicion timeout alone. The kernel rate-limits the ICMP
//! errors it sends (about one per second per destination after a burst,
//! between hosts), so this is evidence, not a per-datagram signal.
//!
//! [`Node::handle_unreachable`]: crate::core::Node::handle_unreachable

use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
#[cfg(target_os = "linux")]
use std::os::fd::AsRawFd;

/// Asks the kernel to queue ICMP errors on `socket`.
#[cfg(target_os = "linux")]
pub fn enable(socket: &socket2::Socket, ipv6: bool) -> io::Result<()> {
    use nix::sys::socket::{setsockopt, sockopt};
    if ipv6 {
        setsockopt(socket, sockopt::Ipv6RecvErr, &true)?;
        // A dual-stack socket also carries IPv4; a v6-only one refuses.
        let _ = setsockopt(socket, sockopt::Ipv4RecvErr, &true);
    } else {
        setsockopt(socket, sockopt::Ipv4RecvErr, &true)?;
    }
    Ok(())
}

/// Does nothing: see the module docs.
#[cfg(not(target_os = "linux"))]
pub fn enable(_socket: &socket2::Socket, _ipv6: bool) -> io::Result<()> {
    Ok(())
}

/// What one read of the error queue found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Queued {
    /// A datagram to this address found no process at its port.
    PortUnreachable(SocketAddr),
    /// Some other error: counted, not evidence.
    Other,
}

/// Reads one entry of the error queue of `socket`, without blocking
/// (`WouldBlock` when the queue is empty).
#[cfg(target_os = "linux")]
pub fn read_one(socket: &impl AsRawFd) -> io::Result<Queued> {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags, SockaddrStorage};
    let mut data = [0u8; 64];
    let mut iov = [io::IoSliceMut::new(&mut data)];
    // The error, its offender's address, and room for what the kernel
    // writes before them when the socket asks for it: packet info, TOS or
    // traffic class (quinn turns these on for the QUIC socket). A buffer
    // too small loses the error itself (MSG_CTRUNC), so the entry reads as
    // `Other`.
    let mut cmsg = nix::cmsg_space!(
        nix::libc::sock_extended_err,
        nix::libc::sockaddr_in6,
        [u8; ANCILLARY_ROOM]
    );
    let msg = recvmsg::<SockaddrStorage>(
        socket.as_raw_fd(),
        &mut iov,
        Some(&mut cmsg),
        MsgFlags::MSG_ERRQUEUE | MsgFlags::MSG_DONTWAIT,
    )?;
    let to = msg.address.and_then(|a| {
        a.as_sockaddr_in()
            .map(|v4| SocketAddr::from((v4.ip(), v4.port())))
            .or_else(|| {
                a.as_sockaddr_in6()
                    .map(|v6| SocketAddr::from((v6.ip(), v6.port())))
            })
    });
    let Ok(cmsgs) = msg.cmsgs() else {
        return Ok(Queued::Other);
    };
    for c in cmsgs {
        let port_unreachable = match c {
            // ICMP destination unreachable (3), port unreachable (3).
            ControlMessageOwned::Ipv4RecvErr(e, _) => {
                e.ee_origin == ORIGIN_ICMP && e.ee_type == 3 && e.ee_code == 3
            }
            // ICMPv6 destination unreachable (1), port unreachable (4).
            ControlMessageOwned::Ipv6RecvErr(e, _) => {
                e.ee_origin == ORIGIN_ICMP6 && e.ee_type == 1 && e.ee_code == 4
            }
            _ => false,
        };
        if let (true, Some(to)) = (port_unreachable, to) {
            return Ok(Queued::PortUnreachable(canonical(to)));
        }
    }
    Ok(Queued::Other)
}

/// The error queue is never read elsewhere: see the module docs.
#[cfg(not(target_os = "linux"))]
pub fn read_one<T>(_socket: &T) -> io::Result<Queued> {
    Err(io::ErrorKind::WouldBlock.into())
}

/// Bytes of ancillary data [`read_one`] makes room for besides the error:
/// 256, enough for `IP_PKTINFO` or `IPV6_PKTINFO` (40 with its header),
/// `IP_TOS` or `IPV6_TCLASS` (24) and more.
#[cfg(target_os = "linux")]
const ANCILLARY_ROOM: usize = 256;

/// `SO_EE_ORIGIN_ICMP` and `SO_EE_ORIGIN_ICMP6`.
#[cfg(target_os = "linux")]
const ORIGIN_ICMP: u8 = 2;
#[cfg(target_os = "linux")]
const ORIGIN_ICMP6: u8 = 3;

/// An IPv4 address mapped into IPv6 (a dual-stack socket) as plain IPv4, as
/// members' addresses are written.
fn canonical(addr: SocketAddr) -> SocketAddr {
    match addr {
        SocketAddr::V6(v6) => match v6.ip().to_ipv4_mapped() {
            Some(v4) => SocketAddr::from((v4, v6.port())),
            None => addr,
        },
        v4 => v4,
    }
}

/// Reads the whole queue of `socket` into `out` (port-unreachable
/// destinations) and returns how many other errors it held.
pub fn drain(socket: &tokio::net::UdpSocket, out: &mut VecDeque<SocketAddr>) -> u64 {
    let mut other = 0;
    // Bounded: the queue holds what the kernel accepted, but a read loop
    // never runs unbounded on a socket.
    for _ in 0..1024 {
        match socket.try_io(tokio::io::Interest::ERROR, || read_one(socket)) {
            Ok(Queued::PortUnreachable(to)) => out.push_back(to),
            Ok(Queued::Other) => other += 1,
            Err(_) => break,
        }
    }
    other
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mapped_ipv4_address_reads_as_ipv4() {
        let mapped: SocketAddr = "[::ffff:127.0.0.2]:4370".parse().unwrap();
        assert_eq!(canonical(mapped), "127.0.0.2:4370".parse().unwrap());
        let v6: SocketAddr = "[::1]:4370".parse().unwrap();
        assert_eq!(canonical(v6), v6);
    }
}
