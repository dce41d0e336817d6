//! A node's role, as EMQX 5 has them: `core` or `replicant`.
//!
//! Every node runs the same membership protocol; the role says what the
//! node is for. Core nodes hold the cluster's state; replicants serve from
//! it and come and go with load, joining through automatic discovery only
//! (an explicit `join` on a replicant is refused). A cluster needs at least
//! one core node running, and `status` says when it has none. Autoheal
//! counts core nodes first: the side with more of them wins a partition, so
//! a side of replicants alone never wins against a side with a core node.
//!
//! The role travels with the node's identity ([`NodeId`]), in gossip and
//! in full-state sync, so every member learns every other member's role.
//!
//! [`NodeId`]: super::identity::NodeId

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// What a node is for: `core` (the default) or `replicant`.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Holds the cluster's state; may `join` explicitly. The default.
    #[default]
    Core,
    /// Serves from the core nodes' state; joins through automatic
    /// discovery only.
    Replicant,
}

impl Role {
    /// Every role, in the order their names are listed.
    pub const ALL: [Role; 2] = [Role::Core, Role::Replicant];

    /// `core` or `replicant`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Core => "core",
            Role::Replicant => "replicant",
        }
    }

    /// Whether this is [`Role::Core`].
    pub fn is_core(self) -> bool {
        self == Role::Core
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A text that names no role.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown node role {0:?}: expected one of core, replicant")]
pub struct RoleError(pub String);

impl FromStr for Role {
    type Err = RoleError;

    /// `core` or `replicant`, as written (no other spelling).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| RoleError(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_role_round_trips_through_its_name() {
        for r in Role::ALL {
            assert_eq!(r.to_string().parse::<Role>(), Ok(r));
            let json = serde_json::to_string(&r).unwrap();
            assert_eq!(json, format!("\"{r}\""));
            assert_eq!(serde_json::from_str::<Role>(&json).unwrap(), r);
        }
        assert_eq!(Role::default(), Role::Core);
    }

    #[test]
    fn an_unknown_role_is_refused_with_the_valid_ones_listed() {
        let e = "Core".parse::<Role>().unwrap_err().to_string();
        assert_eq!(
            e,
            "unknown node role \"Core\": expected one of core, replicant"
        );
        assert!("".parse::<Role>().is_err());
    }
}
