//! What `status` reports: running and stopped nodes, as EMQX prints them,
//! each node's role, and for a verbose status each member's state.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::identity::NodeId;
use super::name::NodeName;
use super::role::Role;
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
/// in neither. `roles` gives every listed node's role; `no_core_running`
/// says that no running node is a core node (a cluster needs at least one,
/// as in EMQX), and is left out of the JSON form while false.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    /// This node and the active members, sorted.
    pub running_nodes: Vec<NodeName>,
    /// Members held down, sorted.
    pub stopped_nodes: Vec<NodeName>,
    /// The role of every node in either list.
    #[serde(default)]
    pub roles: BTreeMap<NodeName, Role>,
    /// Whether no running node is a core node.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub no_core_running: bool,
}

impl Status {
    /// Builds a status from this node's name and role and its members'
    /// names, roles and liveness (`true`: active), in any order; sorts and
    /// removes duplicates.
    pub fn new(
        me: (NodeName, Role),
        members: impl IntoIterator<Item = (NodeName, Role, bool)>,
    ) -> Self {
        let mut roles = BTreeMap::new();
        let mut core_running = me.1.is_core();
        roles.insert(me.0.clone(), me.1);
        let mut running_nodes = vec![me.0];
        let mut stopped_nodes = Vec::new();
        for (name, role, active) in members {
            roles.entry(name.clone()).or_insert(role);
            if active {
                core_running |= role.is_core();
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
            roles,
            no_core_running: !core_running,
        }
    }

    /// The role of a listed node, if it is listed.
    pub fn role(&self, node: &NodeName) -> Option<Role> {
        self.roles.get(node).copied()
    }
}

/// The line `status` adds when no running node is a core node.
pub const NO_CORE_RUNNING: &str = "no core node is running: a cluster needs at least one core node";

impl std::fmt::Display for Status {
    /// `Cluster status: running_nodes: [...] stopped_nodes: [...]`, EMQX's
    /// wording, and a second line when no core node is running.
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
        )?;
        if self.no_core_running {
            write!(f, "\n{NO_CORE_RUNNING}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> NodeName {
        s.parse().unwrap()
    }

    const CORE: Role = Role::Core;
    const REPLICANT: Role = Role::Replicant;

    #[test]
    fn status_lists_itself_as_running_and_sorts_both_lists() {
        let s = Status::new(
            (n("b@h.io"), CORE),
            [
                (n("c@h.io"), CORE, true),
                (n("a@h.io"), REPLICANT, true),
                (n("z@h.io"), CORE, false),
                (n("d@h.io"), CORE, false),
            ],
        );
        assert_eq!(s.running_nodes, [n("a@h.io"), n("b@h.io"), n("c@h.io")]);
        assert_eq!(s.stopped_nodes, [n("d@h.io"), n("z@h.io")]);
        assert_eq!(s.role(&n("a@h.io")), Some(REPLICANT));
        assert_eq!(s.role(&n("z@h.io")), Some(CORE));
        assert!(!s.no_core_running);
    }

    #[test]
    fn status_prints_as_emqx_does_and_serialises_to_its_json_shape_with_roles() {
        let s = Status::new((n("a@h.io"), CORE), [(n("b@h.io"), REPLICANT, false)]);
        assert_eq!(
            s.to_string(),
            "Cluster status: running_nodes: ['a@h.io'] stopped_nodes: ['b@h.io']"
        );
        let json = serde_json::to_string(&s).unwrap();
        assert_eq!(
            json,
            r#"{"running_nodes":["a@h.io"],"stopped_nodes":["b@h.io"],"roles":{"a@h.io":"core","b@h.io":"replicant"}}"#
        );
        assert_eq!(serde_json::from_str::<Status>(&json).unwrap(), s);
    }

    #[test]
    fn status_says_so_when_no_running_node_is_a_core_node() {
        // The only core node is stopped: running replicants alone.
        let s = Status::new(
            (n("r1@h.io"), REPLICANT),
            [(n("r2@h.io"), REPLICANT, true), (n("c@h.io"), CORE, false)],
        );
        assert!(s.no_core_running);
        assert_eq!(
            s.to_string(),
            format!(
                "Cluster status: running_nodes: ['r1@h.io','r2@h.io'] stopped_nodes: ['c@h.io']\n{NO_CORE_RUNNING}"
            )
        );
        let json = serde_json::to_string(&s).unwrap();
        assert!(json.ends_with(r#","no_core_running":true}"#), "{json}");
        // A status from a build without roles still reads.
        let old: Status =
            serde_json::from_str(r#"{"running_nodes":[],"stopped_nodes":[]}"#).unwrap();
        assert!(!old.no_core_running && old.roles.is_empty());
    }
}
