//! The identity a node gossips under: its name, where to reach it, and a generation.
//!
//! foca identifies members by [`foca::Identity`]. Ours is a [`NodeId`]: the
//! [`NodeName`] (unique in the cluster; foca's `Addr` is its 64-bit
//! [`NameKey`]), the socket address the
//! node's gossip listens on, and a `generation`. A node that restarts, or that
//! the cluster declared down, comes back with a higher generation
//! ([`NodeId::renew`]); when two identities share a name the higher generation
//! wins, so the newcomer replaces the stale record instead of being refused.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use super::name::{NameKey, NodeName};

/// A member's identity: name, gossip address and generation.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct NodeId {
    name: NodeName,
    addr: SocketAddr,
    generation: u64,
}

impl NodeId {
    /// Creates an identity. `generation` should grow across restarts of the
    /// same node (the agent uses the start time in milliseconds since the Unix
    /// epoch; the simulator counts restarts).
    pub fn new(name: NodeName, addr: SocketAddr, generation: u64) -> Self {
        Self {
            name,
            addr,
            generation,
        }
    }

    /// The node's name.
    pub fn name(&self) -> &NodeName {
        &self.name
    }

    /// The socket address the node's gossip listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The generation: higher is newer.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// The same node one generation later.
    pub fn renewed(&self) -> Self {
        Self {
            name: self.name.clone(),
            addr: self.addr,
            generation: self.generation.saturating_add(1),
        }
    }
}

/// A node to talk to before we know its generation: a name and an address.
///
/// Join targets, static seeds and discovery results are `Peer`s. The core
/// announces to a placeholder identity (generation 0); the peer answers with
/// its real identity, which replaces the placeholder.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Peer {
    /// The peer's node name.
    pub name: NodeName,
    /// Where its gossip listens.
    pub addr: SocketAddr,
}

impl Peer {
    /// A peer by name and address.
    pub fn new(name: NodeName, addr: SocketAddr) -> Self {
        Self { name, addr }
    }

    /// The identity to announce to: this peer at generation 0.
    pub fn placeholder(&self) -> NodeId {
        NodeId::new(self.name.clone(), self.addr, 0)
    }
}

impl foca::Identity for NodeId {
    type Addr = NameKey;

    fn renew(&self) -> Option<Self> {
        Some(self.renewed())
    }

    fn addr(&self) -> NameKey {
        self.name.key()
    }

    fn win_addr_conflict(&self, adversary: &Self) -> bool {
        // Newer generation wins; on a tie (two processes started with one
        // name in the same millisecond) the socket address decides, so every
        // member picks the same winner.
        (self.generation, self.addr) > (adversary.generation, adversary.addr)
    }
}

impl std::fmt::Display for NodeId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use foca::Identity;

    fn id(name: &str, generation: u64) -> NodeId {
        NodeId::new(
            name.parse().unwrap(),
            "127.0.0.1:4370".parse().unwrap(),
            generation,
        )
    }

    #[test]
    fn renew_raises_the_generation_and_keeps_name_and_address() {
        let a = id("rc@127.0.0.1", 7);
        let b = a.renew().unwrap();
        assert_eq!(b.generation(), 8);
        assert_eq!(b.name(), a.name());
        assert_eq!(Identity::addr(&b), Identity::addr(&a));
    }

    #[test]
    fn a_renewed_identity_wins_the_conflict_with_its_predecessor() {
        let a = id("rc@127.0.0.1", 7);
        let b = a.renewed();
        assert!(b.win_addr_conflict(&a));
        assert!(!a.win_addr_conflict(&b));
    }

    #[test]
    fn a_generation_tie_is_broken_the_same_way_on_every_node() {
        let a = NodeId::new("rc@h.io".parse().unwrap(), "10.0.0.1:1".parse().unwrap(), 1);
        let b = NodeId::new("rc@h.io".parse().unwrap(), "10.0.0.2:1".parse().unwrap(), 1);
        assert!(a.win_addr_conflict(&b) != b.win_addr_conflict(&a));
    }
}
