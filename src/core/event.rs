//! Events: the facts a [`Node`](super::node::Node) reports about the cluster.
//!
//! Events are facts (something happened); [`Command`](super::node::Command)s
//! are imperatives. Drain them with `Node::poll_event` after every input.

use super::identity::NodeId;
use super::name::NodeName;

/// Something that happened to the membership or to this node.
///
/// New kinds of events may be added: match with a wildcard arm.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A member became active (joined, or came back with a new generation).
    MemberUp(NodeId),
    /// An active member was declared down by the cluster.
    MemberDown(NodeId),
    /// An alive member became suspect: a probe of it failed (this node's
    /// or another's), and it is declared down unless it refutes in time.
    /// It is still active (in `running_nodes`).
    MemberSuspect(NodeId),
    /// A suspect member refuted the suspicion: it is alive again, at a
    /// higher incarnation.
    MemberAlive(NodeId),
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
    /// The cluster declared this node down and it took a new identity (next
    /// renewal) to rejoin under the same name.
    SelfRenewed(NodeId),
    /// A member left the cluster (`leave`): it is in neither running nor
    /// stopped nodes any more.
    MemberLeft(NodeId),
    /// A member was removed by `force-leave` and stays removed until it
    /// restarts or joins again. Reported about this node itself when it
    /// learns it was removed; it then stops, as after `leave`.
    NodeForceLeft(NodeId),
    /// A member that had been down longer than `autoclean` was forgotten.
    NodeCleaned(NodeName),
    /// This node heard from the other side of a partition: `peer` is held
    /// down by us, or holds us down, and is alive.
    PartitionDetected {
        /// The node from the other side.
        peer: NodeId,
    },
    /// The partition reported by `PartitionDetected` merged back.
    PartitionHealed {
        /// The node from the other side.
        peer: NodeId,
    },
    /// This node rejoined the cluster under a renewed identity.
    /// `lost_partition` is true when its side lost autoheal's decision: the
    /// application should resync data from the winning side, as EMQX's
    /// minority nodes do.
    Rejoined {
        /// The new identity.
        id: NodeId,
        /// Whether this node's side lost a partition.
        lost_partition: bool,
    },
}
