//! The identity a node gossips under: its name, where to reach it, and a generation.
//!
//! foca identifies members by [`foca::Identity`]. Ours is a [`NodeId`]: the
//! [`NodeName`] (unique in the cluster; foca's `Addr` is its 64-bit
//! [`NameKey`]), the socket address the node's gossip listens on, and a
//! version in two parts:
//!
//! * `generation` grows when the node *starts over*: a restart (the agent
//!   uses its start time in milliseconds), or an explicit `join` after it
//!   left or was removed ([`NodeId::next_generation`]);
//! * `renewal` grows when the node, still running, must come back under a new
//!   identity: the cluster declared it down by mistake, or its side lost a
//!   partition ([`NodeId::renewed`], foca's `Identity::renew`).
//!
//! When two identities share a name, the higher `(generation, renewal)` wins,
//! so the newcomer replaces the stale record instead of being refused. A
//! tombstone (a node that left or was force-left) covers a name up to a
//! generation, whatever the renewal: a removed node's automatic renewals stay
//! out, and only a restart or an explicit join brings it back.
//!
//! The identity also carries the node's [`Role`] (core or replicant), so
//! every member learns each member's role wherever identities travel: in
//! gossip and in full-state sync. A role is fixed for a version (only a
//! restart can change it), so it takes no part in equality.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use super::name::{NameKey, NodeName};
use super::role::Role;

/// A member's identity: name, gossip address, generation and role.
#[derive(Clone, Debug, Eq, Serialize, Deserialize)]
pub struct NodeId {
    name: NodeName,
    addr: SocketAddr,
    generation: u64,
    renewal: u32,
    role: Role,
}

impl PartialEq for NodeId {
    /// Name key, version and address; not the name's text.
    ///
    /// foca compares an update's identity with the record its scan found
    /// (same key) on every update it applies; comparing the texts there
    /// means reading a string elsewhere in memory, a cache miss per update.
    /// Two identities equal here but with different names would need two
    /// names with one 64-bit key (which foca already takes for one node)
    /// *and* one gossip address and version: two processes cannot listen on
    /// one address. The role is fixed for a version, so it is not compared.
    fn eq(&self, other: &Self) -> bool {
        self.name.key() == other.name.key()
            && self.generation == other.generation
            && self.renewal == other.renewal
            && self.addr == other.addr
    }
}

impl std::hash::Hash for NodeId {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.name.hash(state);
        self.generation.hash(state);
        self.renewal.hash(state);
        self.addr.hash(state);
    }
}

impl NodeId {
    /// Creates an identity. `generation` should grow across restarts of the
    /// same node (the agent uses the start time in milliseconds since the Unix
    /// epoch; the simulator counts restarts). The role is
    /// [`Role::Core`]; see [`with_role`](Self::with_role).
    pub fn new(name: NodeName, addr: SocketAddr, generation: u64) -> Self {
        Self {
            name,
            addr,
            generation,
            renewal: 0,
            role: Role::Core,
        }
    }

    /// The same identity with `role`. A node takes its role from its
    /// [`Config`](crate::core::Config) when it is created.
    pub fn with_role(mut self, role: Role) -> Self {
        self.role = role;
        self
    }

    /// The node's role: core or replicant.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The node's name.
    pub fn name(&self) -> &NodeName {
        &self.name
    }

    /// The socket address the node's gossip listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The generation: grows when the node starts over.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// The renewal within the generation: grows when a running node takes a
    /// new identity.
    pub fn renewal(&self) -> u32 {
        self.renewal
    }

    /// `(generation, renewal)`: higher is newer.
    pub fn version(&self) -> (u64, u32) {
        (self.generation, self.renewal)
    }

    /// The same running node, renewed: same generation, next renewal.
    pub fn renewed(&self) -> Self {
        Self {
            name: self.name.clone(),
            addr: self.addr,
            generation: self.generation,
            renewal: self.renewal.saturating_add(1),
            role: self.role,
        }
    }

    /// The same node started over: next generation, renewal 0.
    pub fn next_generation(&self) -> Self {
        Self {
            name: self.name.clone(),
            addr: self.addr,
            generation: self.generation.saturating_add(1),
            renewal: 0,
            role: self.role,
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

    /// The identity to announce to: this peer at generation 0. Its role is
    /// not known yet (core, a placeholder's only role): the peer's answer
    /// carries its real identity, role included.
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
        // Newer version wins; on a tie (two processes started with one name
        // in the same millisecond) the socket address decides, so every
        // member picks the same winner.
        (self.generation, self.renewal, self.addr)
            > (adversary.generation, adversary.renewal, adversary.addr)
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
    fn renew_raises_the_renewal_and_keeps_name_address_and_generation() {
        let a = id("rc@127.0.0.1", 7);
        let b = a.renew().unwrap();
        assert_eq!(b.version(), (7, 1));
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
    fn a_new_generation_beats_any_renewal_of_the_old_one() {
        let a = id("rc@127.0.0.1", 7).renewed().renewed();
        let b = id("rc@127.0.0.1", 7).next_generation();
        assert_eq!(b.version(), (8, 0));
        assert!(b.win_addr_conflict(&a));
    }

    #[test]
    fn renewals_and_new_generations_keep_the_role_and_equality_ignores_it() {
        let a = id("rc@127.0.0.1", 7).with_role(Role::Replicant);
        assert_eq!(a.renewed().role(), Role::Replicant);
        assert_eq!(a.next_generation().role(), Role::Replicant);
        assert_eq!(id("rc@127.0.0.1", 7).role(), Role::Core);
        assert_eq!(a, id("rc@127.0.0.1", 7));
    }

    #[test]
    fn the_role_survives_the_wire_encoding() {
        let a = id("rc@127.0.0.1", 7).with_role(Role::Replicant).renewed();
        let bytes = postcard::to_allocvec(&a).unwrap();
        let b: NodeId = postcard::from_bytes(&bytes).unwrap();
        assert_eq!((b.role(), b.version()), (Role::Replicant, (7, 1)));
    }

    #[test]
    fn a_generation_tie_is_broken_the_same_way_on_every_node() {
        let a = NodeId::new("rc@h.io".parse().unwrap(), "10.0.0.1:1".parse().unwrap(), 1);
        let b = NodeId::new("rc@h.io".parse().unwrap(), "10.0.0.2:1".parse().unwrap(), 1);
        assert!(a.win_addr_conflict(&b) != b.win_addr_conflict(&a));
    }
}
