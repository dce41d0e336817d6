//! What `status` reports: running and stopped nodes, as EMQX prints them,
//! and for a verbose status each member's state.

use serde::{Deserialize, Serialize};

use super::identity::NodeId;
use super::name::NodeName;
use super::time::Time;

/// A member's state as this node sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Liveness {
    /// Answering probes (in `running_nodes`).
    Alive,
    /// A probe failed; down unless it refutes in time (still in
    /// `running_nodes`).
    Suspect,
    /// Declared down by the cluster (in `stopped_nodes`).
    Down,
}

impl Liveness {
    /// `alive`, `suspect` or `down`.
    pub fn as_str(self) -> &'static str {
        match self {
            Liveness::Alive => "alive",
            Liveness::Suspect => "suspect",
            Liveness::Down => "down",
        }
    }
}

impl From<foca::State> for Liveness {
    fn from(state: foca::State) -> Self {
        match state {
            foca::State::Alive => Liveness::Alive,
            foca::State::Suspect => Liveness::Suspect,
            foca::State::Down => Liveness::Down,
        }
    }
}

impl std::fmt::Display for Liveness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One node in a verbose status: its identity (name, address, generation)
/// and state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberState {
    /// The identity this node holds for it.
    pub id: NodeId,
    /// Its state.
    pub liveness: Liveness,
    /// For a down member, since when, on this node's clock (the earliest
    /// report any node made, as autoclean counts it), if known.
    pub down_since: Option<Time>,
}

/// The cluster as one node sees it.
///
/// `running_nodes` holds this node and every active (alive or suspect)
/// member; `stopped_nodes` holds members the cluster declared down and has not
/// yet forgotten. Both are sorted by name. A member that left or was removed is
/// in neither.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    /// This node and the active members, sorted.
    pub running_nodes: Vec<NodeName>,
    /// Members held down, sorted.
    pub stopped_nodes: Vec<NodeName>,
}

impl Status {
    /// Builds a status from this node's name and its members' names and
    /// liveness, in any order; sorts and removes duplicates.
    pub fn new(me: NodeName, members: impl IntoIterator<Item = (NodeName, bool)>) -> Self {
        let mut running_nodes = vec![me];
        let mut stopped_nodes = Vec::new();
        for (name, active) in members {
            if active {
                running_nodes.push(name);
            } else {
                stopped_nodes.push(name);
            }
        }
        running_nodes.sort();
        running_nodes.dedup();
        stopped_nodes.sort();
        stopped_nodes.dedup();
        Self {
            running_nodes,
            stopped_nodes,
        }
    }
}

impl std::fmt::Display for Status {
    /// `Cluster status: running_nodes: [...] stopped_nodes: [...]`, EMQX's wording.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let list = |v: &[NodeName]| {
            v.iter()
                .map(|n| format!("'{n}'"))
                .collect::<Vec<_>>()
                .join(",")
        };
        write!(
            f,
            "Cluster status: running_nodes: [{}] stopped_nodes: [{}]",
            list(&self.running_nodes),
            list(&self.stopped_nodes)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> NodeName {
        s.parse().unwrap()
    }

    #[test]
    fn status_lists_itself_as_running_and_sorts_both_lists() {
        let s = Status::new(
            n("b@h.io"),
            [
                (n("c@h.io"), true),
                (n("a@h.io"), true),
                (n("z@h.io"), false),
                (n("d@h.io"), false),
            ],
        );
        assert_eq!(s.running_nodes, [n("a@h.io"), n("b@h.io"), n("c@h.io")]);
        assert_eq!(s.stopped_nodes, [n("d@h.io"), n("z@h.io")]);
    }

    #[test]
    fn status_prints_as_emqx_does_and_serialises_to_its_json_shape() {
        let s = Status::new(n("a@h.io"), [(n("b@h.io"), false)]);
        assert_eq!(
            s.to_string(),
            "Cluster status: running_nodes: ['a@h.io'] stopped_nodes: ['b@h.io']"
        );
        let json = serde_json::to_string(&s).unwrap();
        assert_eq!(
            json,
            r#"{"running_nodes":["a@h.io"],"stopped_nodes":["b@h.io"]}"#
        );
    }
}
