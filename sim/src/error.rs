//! The simulator's errors. None of them leaves a half-run world behind:
//! they are raised before the run starts, or instead of the world.

use rollcall::core::{ConfigError, NameError};

/// Why a simulation could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// A run needs at least one node.
    #[error("a simulation needs at least 1 node")]
    NoNodes,
    /// More nodes than the simulated address space (10.0.0.1 up) holds.
    #[error("{0} nodes is more than the simulator supports ({max})", max = crate::world::MAX_NODES)]
    TooManyNodes(u64),
    /// The protocol configuration was refused.
    #[error("protocol configuration: {0}")]
    Config(#[from] ConfigError),
    /// A generated node name was refused (a bug, reported rather than panicking).
    #[error("node name: {0}")]
    Name(#[from] NameError),
    /// A cluster did not form by joining within the bound
    /// ([`formation_limit`](crate::run::formation_limit)).
    #[error("{nodes} nodes did not form a cluster by joining within {limit_s} virtual s")]
    NotFormed {
        /// How many nodes.
        nodes: u32,
        /// The bound, in virtual seconds.
        limit_s: f64,
    },
    /// The scenario is invalid.
    #[error(transparent)]
    Scenario(#[from] crate::scenario::ScenarioError),
}
