//! Where the node listens and where it is reached, worked out once at start
//! from `node.name`, `node.bind` and `cluster.proto_dist`.
//!
//! The bind address is the host's IP when the name holds one (so
//! `rc@127.0.0.2` and `rc@127.0.0.3` share a port on one machine), else the
//! unspecified address of the protocol's family; `node.bind` overrides. The
//! advertised address is the bind address unless that is unspecified, then
//! the host's IP (looked up when the host is a domain name). Domain hosts,
//! in the node's own name and in seeds, resolve to the bind address's family
//! when it is given, else to the protocol's (`udp6`, `quic6`: IPv6).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use super::config::{AgentConfig, ProtoDist};
use super::discovery::{resolve_peer, AddrFamily, ResolveError};
use crate::core::name::{Host, PortError};

/// Why the node's addresses could not be worked out.
#[derive(Debug, thiserror::Error)]
pub enum AddressingError {
    /// The port convention gave no port.
    #[error(transparent)]
    Port(#[from] PortError),
    /// The node's own host name gave no address.
    #[error(transparent)]
    Resolve(#[from] ResolveError),
}

/// Which transport carries the gossip.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TransportKind {
    /// Plain UDP datagrams.
    Udp,
    /// QUIC datagrams on TLS connections.
    Quic,
}

/// The transport, the address family, and the two addresses of a node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Addressing {
    /// The transport `cluster.proto_dist` names.
    pub transport: TransportKind,
    /// The family domain hosts resolve to.
    pub family: AddrFamily,
    /// Where the gossip socket binds.
    pub bind: SocketAddr,
    /// Where other nodes reach this one (before an ephemeral port is known).
    pub advertised: SocketAddr,
}

impl Addressing {
    /// The transport and family alone: no lookup.
    pub fn family(config: &AgentConfig) -> (TransportKind, AddrFamily) {
        let (transport, v6) = match config.proto_dist {
            ProtoDist::Udp => (TransportKind::Udp, false),
            ProtoDist::Udp6 => (TransportKind::Udp, true),
            ProtoDist::Quic => (TransportKind::Quic, false),
            ProtoDist::Quic6 => (TransportKind::Quic, true),
        };
        let family = match (config.bind, config.name.host()) {
            (Some(bind), _) => AddrFamily::of(bind.ip()),
            (None, Host::Ip(ip)) => AddrFamily::of(ip),
            (None, Host::Domain(_)) if v6 => AddrFamily::V6,
            (None, Host::Domain(_)) => AddrFamily::V4,
        };
        (transport, family)
    }

    /// Works out every address, looking the node's own host up if it is a
    /// domain name and the bind address is unspecified.
    pub async fn resolve(config: &AgentConfig) -> Result<Self, AddressingError> {
        let (transport, family) = Self::family(config);
        let port = config.gossip_port()?;
        let bind = match (config.bind, config.name.host()) {
            (Some(bind), _) => bind,
            (None, Host::Ip(ip)) => SocketAddr::new(ip, port),
            (None, Host::Domain(_)) => match family {
                AddrFamily::V4 => SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port),
                AddrFamily::V6 => SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), port),
            },
        };
        let advertised = if bind.ip().is_unspecified() {
            let me = resolve_peer(&config.name, config.base_port, family).await?;
            SocketAddr::new(me.addr.ip(), bind.port())
        } else {
            bind
        };
        Ok(Self {
            transport,
            family,
            bind,
            advertised,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(name: &str, proto: ProtoDist) -> AgentConfig {
        let mut c = AgentConfig::new(name.parse().unwrap());
        c.base_port = 0;
        c.proto_dist = proto;
        c
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_domain_host_binds_everywhere_and_advertises_its_address() {
        let a = Addressing::resolve(&config("rc@localhost", ProtoDist::Udp))
            .await
            .unwrap();
        assert!(a.bind.ip().is_unspecified());
        assert_eq!(a.advertised.ip(), IpAddr::V4(Ipv4Addr::LOCALHOST));
        assert_eq!(a.family, AddrFamily::V4);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn an_ip_host_binds_and_advertises_that_ip() {
        let a = Addressing::resolve(&config("rc@[::1]", ProtoDist::Quic))
            .await
            .unwrap();
        assert_eq!(a.bind.ip(), IpAddr::V6(Ipv6Addr::LOCALHOST));
        assert_eq!(a.advertised, a.bind);
        assert_eq!(
            (a.transport, a.family),
            (TransportKind::Quic, AddrFamily::V6)
        );
    }

    #[test]
    fn the_six_protocols_make_domain_hosts_resolve_to_ipv6() {
        for (proto, kind) in [
            (ProtoDist::Udp6, TransportKind::Udp),
            (ProtoDist::Quic6, TransportKind::Quic),
        ] {
            let c = config("rc@example.com", proto);
            assert_eq!(Addressing::family(&c), (kind, AddrFamily::V6));
        }
        let c = config("rc@example.com", ProtoDist::Udp);
        assert_eq!(Addressing::family(&c), (TransportKind::Udp, AddrFamily::V4));
    }

    #[test]
    fn node_bind_decides_the_family() {
        let mut c = config("rc@example.com", ProtoDist::Udp);
        c.bind = Some("[::]:4370".parse().unwrap());
        assert_eq!(Addressing::family(&c).1, AddrFamily::V6);
    }
}
