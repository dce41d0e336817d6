//! Events: the facts a [`Node`](super::node::Node) reports about the cluster.
//!
//! Events are facts (something happened); [`Command`](super::node::Command)s
//! are imperatives. Drain them with `Node::poll_event` after every input.

use super::identity::NodeId;

/// Something that happened to the membership or to this node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A member became active (joined, or came back with a new generation).
    MemberUp(NodeId),
    /// An active member was declared down by the cluster.
    MemberDown(NodeId),
    /// A member's identity was replaced by a newer generation of the same
    /// name (a restart). A `MemberUp` follows when the new one is active and
    /// the old one was not.
    MemberRenewed {
        /// The identity that was known.
        old: NodeId,
        /// The identity that replaced it.
        new: NodeId,
    },
    /// This node is known by at least one active member: it is in a cluster.
    Joined,
    /// Every member this node knew has left or is down: it is alone.
    Alone,
    /// The cluster declared this node down and it took a new generation to
    /// rejoin under the same name.
    SelfRenewed(NodeId),
}
