//! The DNS strategy (`cluster.dns`): the nodes are the records of one name.
//!
//! - `a` / `aaaa`: each address becomes `<this node's name part>@<ip>`,
//!   gossiping on the port convention (`base_port + N`), as EMQX does.
//! - `srv`: each record's target becomes `<name part>@<target>`, gossiping on
//!   the record's port. Each target is looked up separately: servers put the
//!   targets' addresses in the additional section, which the resolver does
//!   not return as answers.
//!
//! The resolver keeps no cache, so a record added or removed is seen on the
//! next round. A name that does not exist, an empty answer or a server that
//! does not answer is a [`DiscoveryError`]: the runtime logs it and tries
//! again on its schedule.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use hickory_resolver::config::{NameServerConfig, ResolverConfig};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::NetError;
use hickory_resolver::proto::rr::{RData, Record};
use hickory_resolver::TokioResolver;

use crate::core::{NameError, NodeName, Peer};

use super::resolve::AddrFamily;
use super::settings::{DnsConfig, DnsRecordType};
use super::{Discovery, DiscoveryError, ResolveError};

/// How long one query waits for an answer (each of two attempts).
const QUERY_TIMEOUT: Duration = Duration::from_secs(2);

/// Why a DNS round found nothing, or the resolver could not be built.
#[derive(Debug, thiserror::Error)]
pub enum DnsError {
    /// The system resolver's configuration could not be read.
    #[error("cannot read the system resolver configuration: {0}")]
    SystemConfig(Box<NetError>),
    /// The query failed: no such name, no records, or no answer in time.
    #[error("dns lookup of {name} ({record_type}) failed: {error}")]
    Lookup {
        /// The name looked up.
        name: String,
        /// `A`, `AAAA` or `SRV`.
        record_type: &'static str,
        /// The resolver's error.
        error: Box<NetError>,
    },
    /// A record gave a host that is not valid in a node name.
    #[error("dns record gives an unusable node host {host}: {error}")]
    BadName {
        /// The host from the record.
        host: String,
        /// Why the node name is invalid.
        error: NameError,
    },
}

/// Finds nodes through the A, AAAA or SRV records of one name.
pub struct Dns {
    resolver: TokioResolver,
    config: DnsConfig,
    me: NodeName,
    base_port: u16,
}

impl std::fmt::Debug for Dns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dns")
            .field("config", &self.config)
            .field("me", &self.me)
            .field("base_port", &self.base_port)
            .finish_non_exhaustive()
    }
}

impl Dns {
    /// A strategy for node `me` (whose name part every discovered node
    /// shares) with ports by the convention from `base_port`. SRV targets
    /// resolve to addresses of `family`.
    ///
    /// Fails only if no server is configured and the system resolver's
    /// configuration cannot be read.
    pub fn new(
        config: DnsConfig,
        me: NodeName,
        base_port: u16,
        family: AddrFamily,
    ) -> Result<Self, DnsError> {
        let provider = TokioRuntimeProvider::default();
        let mut builder = match config.server {
            Some(server) => {
                let mut ns = NameServerConfig::udp_and_tcp(server.ip());
                for connection in &mut ns.connections {
                    connection.port = server.port();
                }
                TokioResolver::builder_with_config(
                    ResolverConfig::from_name_servers(vec![ns]),
                    provider,
                )
            }
            None => {
                TokioResolver::builder(provider).map_err(|e| DnsError::SystemConfig(Box::new(e)))?
            }
        };
        let options = builder.options_mut();
        options.cache_size = 0;
        options.timeout = QUERY_TIMEOUT;
        options.attempts = 2;
        options.ip_strategy = match family {
            AddrFamily::V4 => hickory_resolver::config::LookupIpStrategy::Ipv4Only,
            AddrFamily::V6 => hickory_resolver::config::LookupIpStrategy::Ipv6Only,
        };
        let resolver = builder
            .build()
            .map_err(|e| DnsError::SystemConfig(Box::new(e)))?;
        Ok(Self {
            resolver,
            config,
            me,
            base_port,
        })
    }

    /// A and AAAA: every address at the port convention.
    async fn addresses(&self, v6: bool) -> Result<Vec<Peer>, DiscoveryError> {
        let name = self.config.name.as_str();
        let lookup = if v6 {
            self.resolver.ipv6_lookup(name).await
        } else {
            self.resolver.ipv4_lookup(name).await
        };
        let lookup = lookup.map_err(|error| DnsError::Lookup {
            name: name.to_owned(),
            record_type: if v6 { "AAAA" } else { "A" },
            error: Box::new(error),
        })?;
        address_peers(&self.me, lookup.answers(), v6, self.base_port)
    }

    /// SRV: every target at its record's port, each target looked up.
    async fn services(&self) -> Result<Vec<Peer>, DiscoveryError> {
        let name = self.config.name.as_str();
        let lookup = self
            .resolver
            .srv_lookup(name)
            .await
            .map_err(|error| DnsError::Lookup {
                name: name.to_owned(),
                record_type: "SRV",
                error: Box::new(error),
            })?;
        let targets = srv_targets(lookup.answers());
        let mut peers = Vec::with_capacity(targets.len());
        let mut first_error = None;
        for (host, port) in targets {
            let node = match self.me.with_host(&host) {
                Ok(node) => node,
                Err(error) => {
                    tracing::warn!("dns: SRV target {host} skipped: {error}");
                    first_error
                        .get_or_insert(DiscoveryError::from(DnsError::BadName { host, error }));
                    continue;
                }
            };
            match self.resolver.lookup_ip(format!("{host}.")).await {
                Ok(ips) => match ips.iter().next() {
                    Some(ip) => peers.push(Peer::new(node, SocketAddr::new(ip, port))),
                    None => tracing::warn!("dns: SRV target {host} has no address"),
                },
                Err(error) => {
                    tracing::warn!("dns: SRV target {host} skipped: {error}");
                    first_error.get_or_insert(DiscoveryError::from(DnsError::Lookup {
                        name: host,
                        record_type: "A/AAAA",
                        error: Box::new(error),
                    }));
                }
            }
        }
        match first_error {
            Some(e) if peers.is_empty() => Err(e),
            _ => Ok(peers),
        }
    }
}

impl Discovery for Dns {
    fn name(&self) -> &'static str {
        "dns"
    }

    async fn discover(&mut self) -> Result<Vec<Peer>, DiscoveryError> {
        match self.config.record_type {
            DnsRecordType::A => self.addresses(false).await,
            DnsRecordType::Aaaa => self.addresses(true).await,
            DnsRecordType::Srv => self.services().await,
        }
    }
}

/// `<name part of me>@<ip>`, gossiping on the port convention: what an A or
/// AAAA record stands for.
pub fn peer_at_ip(me: &NodeName, ip: IpAddr, base_port: u16) -> Result<Peer, DiscoveryError> {
    let node = me
        .with_host(&ip.to_string())
        .map_err(|error| DnsError::BadName {
            host: ip.to_string(),
            error,
        })?;
    let port = node.port(base_port).map_err(ResolveError::from)?;
    Ok(Peer::new(node, SocketAddr::new(ip, port)))
}

/// The peers an A (`v6` false) or AAAA (`v6` true) answer stands for: one
/// per address record of that family, each at [`peer_at_ip`]; other
/// records are ignored. An address that makes no node name is an error.
pub fn address_peers(
    me: &NodeName,
    answers: &[Record],
    v6: bool,
    base_port: u16,
) -> Result<Vec<Peer>, DiscoveryError> {
    answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::A(a) if !v6 => Some(IpAddr::V4(a.0)),
            RData::AAAA(aaaa) if v6 => Some(IpAddr::V6(aaaa.0)),
            _ => None,
        })
        .map(|ip| peer_at_ip(me, ip, base_port))
        .collect()
}

/// The targets of an SRV answer, as node-name hosts with their ports:
/// sorted, without duplicates, without the "no service here" target
/// (`.`); other records are ignored. Each host still has to make a node
/// name (`NodeName::with_host`) and to resolve.
pub fn srv_targets(answers: &[Record]) -> Vec<(String, u16)> {
    let mut targets: Vec<(String, u16)> = answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::SRV(srv) => Some((srv_host(&srv.target.to_ascii()), srv.port)),
            _ => None,
        })
        .filter(|(host, _)| !host.is_empty())
        .collect();
    targets.sort();
    targets.dedup();
    targets
}

/// An SRV target as a node name's host: lower case, no trailing dot.
fn srv_host(target: &str) -> String {
    target.trim_end_matches('.').to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn me() -> NodeName {
        "rc2@node.example".parse().unwrap()
    }

    #[test]
    fn an_a_record_becomes_the_name_part_at_the_ip_on_the_port_convention() {
        let peer = peer_at_ip(&me(), "10.0.0.7".parse().unwrap(), 4370).unwrap();
        assert_eq!(peer.name.as_str(), "rc2@10.0.0.7");
        assert_eq!(peer.addr, "10.0.0.7:4372".parse().unwrap());
    }

    #[test]
    fn an_aaaa_record_becomes_a_bare_ipv6_host() {
        let peer = peer_at_ip(&me(), "fd00::7".parse().unwrap(), 4370).unwrap();
        assert_eq!(peer.name.as_str(), "rc2@fd00::7");
        assert_eq!(peer.addr, "[fd00::7]:4372".parse().unwrap());
    }

    #[test]
    fn a_port_beyond_65535_is_a_discovery_error_not_a_panic() {
        let e = peer_at_ip(&me(), "10.0.0.7".parse().unwrap(), 65535).unwrap_err();
        assert!(e.to_string().contains("rc2@10.0.0.7"), "{e}");
    }

    fn record(data: RData) -> Record {
        let owner = hickory_resolver::proto::rr::Name::from_ascii("rc.example.").unwrap();
        Record::from_rdata(owner, 60, data)
    }

    #[test]
    fn an_address_answer_gives_one_peer_per_record_of_its_family() {
        use hickory_resolver::proto::rr::rdata::{A, AAAA};
        let answers = [
            record(RData::A(A("10.0.0.1".parse().unwrap()))),
            record(RData::AAAA(AAAA("fd00::1".parse().unwrap()))),
        ];
        let v4 = address_peers(&me(), &answers, false, 4370).unwrap();
        assert_eq!(v4.len(), 1);
        assert_eq!(v4[0].name.as_str(), "rc2@10.0.0.1");
        let v6 = address_peers(&me(), &answers, true, 4370).unwrap();
        assert_eq!(v6[0].addr, "[fd00::1]:4372".parse().unwrap());
    }

    #[test]
    fn srv_targets_are_sorted_once_each_without_the_empty_target() {
        use hickory_resolver::proto::rr::{rdata::SRV, Name};
        let srv = |port, target| {
            record(RData::SRV(SRV::new(
                0,
                0,
                port,
                Name::from_ascii(target).unwrap(),
            )))
        };
        let answers = [
            srv(4371, "B.example."),
            srv(4370, "a.example."),
            srv(4371, "b.example."),
            srv(1, "."),
        ];
        assert_eq!(
            srv_targets(&answers),
            [
                ("a.example".to_owned(), 4370),
                ("b.example".to_owned(), 4371)
            ]
        );
    }

    #[test]
    fn an_srv_target_loses_its_trailing_dot_and_case() {
        assert_eq!(srv_host("Node1.Cluster.Local."), "node1.cluster.local");
        assert_eq!(srv_host("."), "");
    }
}
