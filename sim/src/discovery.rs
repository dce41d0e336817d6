//! Static discovery as the agent runs it: every live node hands the seed
//! list to `Node::handle_discovered` every [`ALONE`] while it has no
//! members and every [`IN_CLUSTER`] otherwise (the agent's
//! `discovery::Schedule` defaults). This is how the sides of a partition
//! that outlasted autoclean, which no longer hold each other even as down
//! members, find each other again.

use std::time::Duration;

/// The rediscovery interval of a node with no members.
pub const ALONE: Duration = Duration::from_secs(5);

/// The rediscovery interval of a node with members.
pub const IN_CLUSTER: Duration = Duration::from_secs(30);

/// The wait before the next discovery round of a node with `members` members.
pub fn next_wait(members: usize) -> Duration {
    if members == 0 {
        ALONE
    } else {
        IN_CLUSTER
    }
}
