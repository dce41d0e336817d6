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
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::intern::{intern, intern_unseen, recent};
use super::name::{NameKey, NodeName};
use super::role::Role;

/// A member's identity: name, gossip address, generation and role.
///
/// Sixteen bytes: the name's key, which foca compares in its scans, and a
/// pointer to the rest, shared by every copy of the identity in the
/// process (see [`intern`](super::intern)). foca keeps one per member in a
/// list it scans on every update it applies, so a small entry keeps the
/// scan short and the memory of a large view low.
#[derive(Clone)]
pub struct NodeId {
    key: NameKey,
    parts: Arc<Parts>,
}

/// What a [`NodeId`] holds besides its key, in the order it is encoded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub(crate) struct Parts {
    pub(crate) name: NodeName,
    pub(crate) addr: SocketAddr,
    pub(crate) generation: u64,
    pub(crate) renewal: u32,
    pub(crate) role: Role,
}

impl Eq for NodeId {}

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
        let (a, b) = (&*self.parts, &*other.parts);
        self.key == other.key
            && (Arc::ptr_eq(&self.parts, &other.parts)
                || (a.generation == b.generation && a.renewal == b.renewal && a.addr == b.addr))
    }
}

impl std::hash::Hash for NodeId {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.parts.name.hash(state);
        self.parts.generation.hash(state);
        self.parts.renewal.hash(state);
        self.parts.addr.hash(state);
    }
}

impl std::fmt::Debug for NodeId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let p = &*self.parts;
        f.debug_struct("NodeId")
            .field("name", &p.name)
            .field("addr", &p.addr)
            .field("generation", &p.generation)
            .field("renewal", &p.renewal)
            .field("role", &p.role)
            .finish()
    }
}

impl Serialize for NodeId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.parts.serialize(s)
    }
}

/// [`Parts`] as received, the name not yet parsed.
#[derive(Deserialize)]
struct Received<'a> {
    #[serde(borrow)]
    name: std::borrow::Cow<'a, str>,
    addr: SocketAddr,
    generation: u64,
    renewal: u32,
    role: Role,
}

impl<'de> Deserialize<'de> for NodeId {
    /// An identity this thread decoded or made recently is taken as it is,
    /// its name not parsed again (see [`recent`]).
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let r = Received::deserialize(d)?;
        if let Some(parts) = recent(&r.name, r.addr, r.generation, r.renewal, r.role) {
            return Ok(Self::from_shared(parts));
        }
        let name = NodeName::parse(&r.name).map_err(serde::de::Error::custom)?;
        Ok(Self::from_shared(intern_unseen(Parts {
            name,
            addr: r.addr,
            generation: r.generation,
            renewal: r.renewal,
            role: r.role,
        })))
    }
}

impl NodeId {
    /// Creates an identity. `generation` should grow across restarts of the
    /// same node (the agent uses the start time in milliseconds since the Unix
    /// epoch; the simulator counts restarts). The role is
    /// [`Role::Core`]; see [`with_role`](Self::with_role).
    pub fn new(name: NodeName, addr: SocketAddr, generation: u64) -> Self {
        Self::from_parts(Parts {
            name,
            addr,
            generation,
            renewal: 0,
            role: Role::Core,
        })
    }

    fn from_parts(parts: Parts) -> Self {
        Self::from_shared(intern(parts))
    }

    fn from_shared(parts: Arc<Parts>) -> Self {
        Self {
            key: parts.name.key(),
            parts,
        }
    }

    /// The same identity with `role`. A node takes its role from its
    /// [`Config`](crate::core::Config) when it is created.
    pub fn with_role(self, role: Role) -> Self {
        if self.parts.role == role {
            return self;
        }
        Self::from_parts(Parts {
            role,
            ..(*self.parts).clone()
        })
    }

    /// The node's role: core or replicant.
    pub fn role(&self) -> Role {
        self.parts.role
    }

    /// The node's name.
    pub fn name(&self) -> &NodeName {
        &self.parts.name
    }

    /// The name's key (`self.name().key()`), held inline: reading it does
    /// not touch the shared parts, which matters in a pass over a view.
    pub fn key(&self) -> NameKey {
        self.key
    }

    /// The socket address the node's gossip listens on.
    pub fn addr(&self) -> SocketAddr {
        self.parts.addr
    }

    /// The generation: grows when the node starts over.
    pub fn generation(&self) -> u64 {
        self.parts.generation
    }

    /// The renewal within the generation: grows when a running node takes a
    /// new identity.
    pub fn renewal(&self) -> u32 {
        self.parts.renewal
    }

    /// `(generation, renewal)`: higher is newer.
    pub fn version(&self) -> (u64, u32) {
        (self.parts.generation, self.parts.renewal)
    }

    /// The same running node, renewed: same generation, next renewal.
    pub fn renewed(&self) -> Self {
        Self::from_parts(Parts {
            renewal: self.parts.renewal.saturating_add(1),
            ..(*self.parts).clone()
        })
    }

    /// The same node started over: next generation, renewal 0.
    pub fn next_generation(&self) -> Self {
        Self::from_parts(Parts {
            generation: self.parts.generation.saturating_add(1),
            renewal: 0,
            ..(*self.parts).clone()
        })
    }

    /// Whether the two share one stored copy of their parts (for tests).
    #[cfg(test)]
    pub(crate) fn shares_parts_with(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.parts, &other.parts)
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
        self.key
    }

    fn win_addr_conflict(&self, adversary: &Self) -> bool {
        // Newer version wins; on a tie (two processes started with one name
        // in the same millisecond) the socket address decides, so every
        // member picks the same winner.
        let (a, b) = (&*self.parts, &*adversary.parts);
        (a.generation, a.renewal, a.addr) > (b.generation, b.renewal, b.addr)
    }
}

impl std::fmt::Display for NodeId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.parts.name)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use foca::Identity;

    /// `name` at 127.0.0.1:4370, generation `generation`.
    pub(crate) fn id(name: &str, generation: u64) -> NodeId {
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
