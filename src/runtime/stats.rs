//! What a running agent counts: the node's counters and the transport's.

use super::transport::TransportStats;
use crate::core::Stats;

/// Counters of a running agent.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AgentStats {
    /// The node's counters (sent, received, dropped by reason).
    pub node: Stats,
    /// The transport's counters (too large, unreadable, send errors,
    /// refused handshakes).
    pub transport: TransportStats,
    /// Connections open now (QUIC; 0 over UDP).
    pub connections_open: usize,
}
