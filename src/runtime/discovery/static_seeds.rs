//! The static strategy: a fixed list of node names (`cluster.static.seeds`).
//!
//! Every round resolves every seed again (a domain name's address may have
//! changed) and hands them all to the node, which announces to those that are
//! not yet members. Seeds that do not resolve are logged and skipped.

use crate::core::{NodeName, Peer};

use super::resolve::{resolve_peer, AddrFamily};
use super::{Discovery, DiscoveryError};

/// A fixed seed list.
#[derive(Clone, Debug)]
pub struct StaticSeeds {
    seeds: Vec<NodeName>,
    base_port: u16,
    family: AddrFamily,
}

impl StaticSeeds {
    /// Seeds by name; their ports follow the convention from `base_port`, and
    /// domain hosts resolve to addresses of `family`.
    pub fn new(seeds: Vec<NodeName>, base_port: u16, family: AddrFamily) -> Self {
        Self {
            seeds,
            base_port,
            family,
        }
    }
}

impl Discovery for StaticSeeds {
    fn name(&self) -> &'static str {
        "static"
    }

    async fn discover(&mut self) -> Result<Vec<Peer>, DiscoveryError> {
        let mut peers = Vec::with_capacity(self.seeds.len());
        let mut first_error = None;
        for seed in &self.seeds {
            match resolve_peer(seed, self.base_port, self.family).await {
                Ok(peer) => peers.push(peer),
                Err(e) => {
                    tracing::warn!("static seed skipped: {e}");
                    first_error.get_or_insert(e);
                }
            }
        }
        match first_error {
            Some(e) if peers.is_empty() => Err(e.into()),
            _ => Ok(peers),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "current_thread")]
    async fn ip_seeds_resolve_by_the_port_convention_without_any_lookup() {
        let seeds = vec![
            "rc@127.0.0.2".parse().unwrap(),
            "rc3@127.0.0.3".parse().unwrap(),
        ];
        let mut s = StaticSeeds::new(seeds, 4370, AddrFamily::V4);
        let peers = s.discover().await.unwrap();
        let addrs: Vec<String> = peers.iter().map(|p| p.addr.to_string()).collect();
        assert_eq!(addrs, ["127.0.0.2:4370", "127.0.0.3:4373"]);
    }
}
