//! The sans-io core: everything a node decides, with no I/O, no clock and no
//! OS randomness. The tokio runtime and the simulator drive the same code.
//!
//! | file | concept |
//! |------|---------|
//! | [`name`] | `NodeName` (`name@host`), validation, the port convention |
//! | [`keymap`] | `KeyMap`, `HashedMap`: maps keyed by hashes (name keys, replay streams), hashed by them |
//! | [`identity`] | `NodeId` (foca's identity: name, address, generation, role), `Peer` |
//! | [`role`] | `Role`: core or replicant, as EMQX 5 has them |
//! | [`wire`] | the sealed envelope: versioned, cluster-tagged, cookie-keyed AEAD |
//! | [`time`] | `Time`, the driver's clock as an input |
//! | [`rng`] | `SeedRng`, the value-stable generator a node's seed feeds |
//! | [`timers`] | one ordered deadline queue for foca's timers |
//! | [`config`] | cluster name, cookie, LAN/WAN/local SWIM profiles |
//! | [`membership`] | `Status`: running and stopped nodes, as `status` prints them; each member's state |
//! | [`event`] | `Event`: the facts a node reports |
//! | [`sync`] | full-state sync: digests, record batches, validation |
//! | [`tombstone`] | tombstones of nodes that left or were force-left |
//! | [`autoclean`] | since when members are down; forgetting them |
//! | [`autoheal`] | which side of a healed partition rejoins the other |
//! | [`health`] | local health: how much longer a slow node waits (Lifeguard) |
//! | [`dynamic_suspicion`] | a suspicion's timeout, shrinking with confirmations (Lifeguard) |
//! | [`node`] | `Node`: the state machine and its call protocol |

pub mod autoclean;
pub mod autoheal;
pub mod config;
pub mod dynamic_suspicion;
pub mod event;
pub mod health;
pub mod identity;
mod intern;
pub mod keymap;
pub mod membership;
pub mod name;
pub mod node;
pub mod replay;
pub mod rng;
pub mod role;
pub mod sync;
pub mod time;
pub mod timers;
pub mod tombstone;
pub mod wire;

pub use config::{Config, ConfigError, Cookie, Profile, RediscoveryConfig, SyncConfig};
pub use event::Event;
pub use foca::{Member, State};
pub use identity::{NodeId, Peer};
pub use membership::{Liveness, MemberState, Status};
pub use name::{NameError, NodeName};
pub use node::{
    Command, CommandError, EvidenceStats, LifeguardStats, MemberCounts, Node, Stats, Transmit,
    Unreachable,
};
pub use rng::SeedRng;
pub use role::{Role, RoleError};
pub use time::Time;
pub use tombstone::{Departure, Tombstone};
