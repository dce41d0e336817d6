//! From a node name to where its gossip listens: the port by EMQX's
//! convention (`base_port + N`), the address from the host part, looked up
//! with the system resolver when it is a domain name.

use std::io;
use std::net::{IpAddr, SocketAddr};

use crate::core::name::{Host, PortError};
use crate::core::{NodeName, Peer};

/// Which address family the node's socket speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AddrFamily {
    /// IPv4.
    V4,
    /// IPv6.
    V6,
}

impl AddrFamily {
    /// The family of an address.
    pub fn of(ip: IpAddr) -> Self {
        if ip.is_ipv4() {
            Self::V4
        } else {
            Self::V6
        }
    }

    fn matches(self, addr: &SocketAddr) -> bool {
        Self::of(addr.ip()) == self
    }
}

/// Why a node name gave no address.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    /// The port convention gave no port.
    #[error(transparent)]
    Port(#[from] PortError),
    /// The host's name did not resolve.
    #[error("unknown node {name}: cannot resolve {host}: {error}")]
    Lookup {
        /// The node.
        name: NodeName,
        /// Its host part.
        host: String,
        /// The resolver's error.
        error: io::Error,
    },
    /// The host resolved, but to no address of the socket's family.
    #[error("unknown node {name}: {host} has no {family:?} address")]
    NoAddress {
        /// The node.
        name: NodeName,
        /// Its host part.
        host: String,
        /// The family looked for.
        family: AddrFamily,
    },
}

/// Where `name` gossips: its host's address (the first one of `family` when
/// the host is a domain name) and the port `base_port + N`.
pub async fn resolve_peer(
    name: &NodeName,
    base_port: u16,
    family: AddrFamily,
) -> Result<Peer, ResolveError> {
    let port = name.port(base_port)?;
    let addr = match name.host() {
        Host::Ip(ip) => SocketAddr::new(ip, port),
        Host::Domain(host) => {
            let found = tokio::net::lookup_host((host, port))
                .await
                .map_err(|error| ResolveError::Lookup {
                    name: name.clone(),
                    host: host.to_owned(),
                    error,
                })?;
            let mut found = found.filter(|a| family.matches(a));
            found.next().ok_or_else(|| ResolveError::NoAddress {
                name: name.clone(),
                host: host.to_owned(),
                family,
            })?
        }
    };
    Ok(Peer::new(name.clone(), addr))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "current_thread")]
    async fn localhost_resolves_through_the_system_resolver() {
        let name: NodeName = "rc2@localhost".parse().unwrap();
        let peer = resolve_peer(&name, 4370, AddrFamily::V4).await.unwrap();
        assert_eq!(peer.addr, "127.0.0.1:4372".parse().unwrap());
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_port_beyond_65535_is_an_error_naming_the_node() {
        let name: NodeName = "rc9@127.0.0.1".parse().unwrap();
        let e = resolve_peer(&name, 65530, AddrFamily::V4)
            .await
            .unwrap_err();
        assert!(e.to_string().contains("rc9@127.0.0.1"), "{e}");
    }
}
