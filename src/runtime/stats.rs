//! What a running agent counts: the node's counters and the transport's,
//! the members by state, the node's identity version, and discovery's runs.
//!
//! `rollcall ctl stats` prints an [`AgentStats`] (its `Display`), `--json`
//! its serde form; the metrics endpoint exports the same snapshot.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

use super::transport::TransportStats;
use crate::core::{MemberCounts, Stats};

/// Counters of a running agent, as one snapshot from its owner task.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AgentStats {
    /// The node's counters (sent, received, dropped by reason).
    pub node: Stats,
    /// The transport's counters (too large, unreadable, send errors,
    /// refused handshakes).
    pub transport: TransportStats,
    /// Connections open now (QUIC; 0 over UDP).
    pub connections_open: usize,
    /// Members by state, this node excluded.
    pub members: MemberCounts,
    /// This node's generation (its start time in milliseconds since the
    /// Unix epoch, raised by a join after a leave).
    pub generation: u64,
    /// This node's renewal within the generation (raised when it comes
    /// back under a new identity: declared down by mistake, or its side
    /// lost a partition).
    pub renewal: u32,
    /// This node's SWIM incarnation (raised by each refutation).
    pub incarnation: u16,
    /// The discovery strategy's rounds.
    pub discovery: DiscoveryStats,
}

/// What the discovery task did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct DiscoveryStats {
    /// The strategy, as `cluster.discovery_strategy` names it.
    pub strategy: String,
    /// Rounds: each time the strategy was asked for seeds.
    pub runs: u64,
    /// Rounds that failed (the error was logged; the next round retries).
    pub failures: u64,
}

/// The discovery task's counters, shared with the owner task, which reads
/// them into each [`AgentStats`].
#[derive(Debug, Default)]
pub(crate) struct DiscoveryCounters {
    runs: AtomicU64,
    failures: AtomicU64,
}

impl DiscoveryCounters {
    /// Counts one round, failed or not.
    pub(crate) fn count(&self, failed: bool) {
        self.runs.fetch_add(1, Ordering::Relaxed);
        if failed {
            self.failures.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The counts now, for `strategy`.
    pub(crate) fn read(&self, strategy: &str) -> DiscoveryStats {
        DiscoveryStats {
            strategy: strategy.to_owned(),
            runs: self.runs.load(Ordering::Relaxed),
            failures: self.failures.load(Ordering::Relaxed),
        }
    }
}

impl AgentStats {
    /// Datagrams received and dropped, by reason, as the metrics and
    /// `ctl stats` name them: the node's reasons, and the transport's
    /// (`too_large` adds the two places a datagram is found too large).
    pub fn dropped(&self) -> [(&'static str, u64); 13] {
        let (d, t) = (&self.node.dropped, &self.transport);
        [
            ("too_short", d.too_short),
            ("unknown_version", d.unknown_version),
            ("other_cluster", d.other_cluster),
            ("bad_seal", d.bad_seal),
            ("unknown_kind", d.unknown_kind),
            ("malformed", d.malformed),
            ("too_large", d.too_large + t.too_large),
            ("from_self", d.from_self),
            ("after_leave", d.after_leave),
            ("sync_rejected", d.sync_rejected),
            ("merging", d.merging),
            ("replayed", d.replayed),
            ("unreadable", t.unreadable),
        ]
    }

    /// Datagrams the node handed over that were never sent, by reason.
    pub fn unsent(&self) -> [(&'static str, u64); 3] {
        let t = &self.transport;
        [
            ("send_error", t.send_errors),
            ("queue_full", t.queue_dropped),
            ("too_large", t.too_large_sent),
        ]
    }
}

impl fmt::Display for AgentStats {
    /// The counters for an operator, one topic a line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (n, m, l) = (&self.node, &self.members, &self.node.lifeguard);
        let list = |pairs: &[(&str, u64)]| {
            pairs
                .iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        writeln!(
            f,
            "identity: generation {}, renewal {}, incarnation {}",
            self.generation, self.renewal, self.incarnation
        )?;
        writeln!(
            f,
            "members: alive {}, suspect {}, down {}",
            m.alive, m.suspect, m.down
        )?;
        writeln!(
            f,
            "probes: sent {}, failed {}",
            l.probes_sent, l.probes_failed
        )?;
        writeln!(
            f,
            "suspicions: raised {} (probe {}, network evidence {}), refuted {}",
            l.probes_failed + n.evidence.suspected,
            l.probes_failed,
            n.evidence.suspected,
            n.refuted
        )?;
        writeln!(f, "members declared down: {}", n.members_down)?;
        writeln!(
            f,
            "datagrams: in {} ({} bytes), out {} ({} bytes)",
            n.datagrams_received, n.bytes_received, n.datagrams_sent, n.bytes_sent
        )?;
        writeln!(f, "dropped in: {}", list(&self.dropped()))?;
        writeln!(f, "not sent: {}", list(&self.unsent()))?;
        writeln!(
            f,
            "sync: rounds {}, datagrams {}, bytes {}",
            n.sync.sessions_started, n.sync.datagrams_sent, n.sync.bytes_sent
        )?;
        writeln!(
            f,
            "autoheal: won {}, lost {}",
            n.autoheal_won, n.autoheal_lost
        )?;
        writeln!(f, "autoclean: removed {}", n.autoclean_removed)?;
        writeln!(
            f,
            "discovery ({}): runs {}, failures {}",
            self.discovery.strategy, self.discovery.runs, self.discovery.failures
        )?;
        write!(
            f,
            "local health: {} (0 is healthy, 7 the worst); connections open: {}",
            l.health, self.connections_open
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_text_form_names_every_topic_on_its_own_line() {
        let mut s = AgentStats::default();
        s.members.alive = 2;
        s.node.dropped.too_large = 1;
        s.transport.too_large = 2;
        s.discovery.strategy = "static".into();
        let text = s.to_string();
        assert!(
            text.contains("members: alive 2, suspect 0, down 0"),
            "{text}"
        );
        assert!(text.contains("too_large 3"), "{text}");
        assert!(text.contains("discovery (static): runs 0"), "{text}");
        assert_eq!(text.lines().count(), 13, "{text}");
    }

    #[test]
    fn the_json_form_round_trips_and_tolerates_missing_fields() {
        let mut s = AgentStats::default();
        s.node.lifeguard.probes_sent = 7;
        s.discovery.strategy = "dns".into();
        let json = serde_json::to_string(&s).unwrap();
        assert_eq!(serde_json::from_str::<AgentStats>(&json).unwrap(), s);
        let partial: AgentStats = serde_json::from_str(r#"{"generation":5}"#).unwrap();
        assert_eq!(partial.generation, 5);
    }
}
