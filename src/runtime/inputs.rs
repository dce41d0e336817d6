//! What the rest of the agent asks of the owner task: the one channel into
//! the task that owns the `Node`.

use tokio::sync::oneshot;

use super::monitor::EventStream;
use super::stats::AgentStats;
use super::verbose::VerboseStatus;
use crate::core::{Command, CommandError, Peer, Status};

/// What the rest of the agent asks of the owner task.
pub(crate) enum Input {
    /// Carry out a command and say whether the node took it.
    Command(Command, oneshot::Sender<Result<(), CommandError>>),
    /// Seeds found by discovery.
    Discovered(Vec<Peer>),
    /// Report running and stopped nodes, and each node's details.
    Verbose(oneshot::Sender<VerboseStatus>),
    /// Subscribe to the events, after a copy of the history if asked.
    Monitor {
        /// Whether to copy the history first.
        since_start: bool,
        /// Where the stream goes.
        reply: oneshot::Sender<EventStream>,
    },
    /// Report running and stopped nodes.
    Status(oneshot::Sender<Status>),
    /// Report counters.
    Stats(oneshot::Sender<AgentStats>),
    /// Stop: leave first if asked (and not yet left), send what that
    /// produced, then end the task.
    Shutdown {
        /// Whether to tell the cluster we are leaving.
        leave: bool,
        /// Signalled once the task has sent its last datagram.
        done: oneshot::Sender<()>,
    },
}
