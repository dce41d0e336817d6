//! The Prometheus endpoint: `GET /metrics` on `metrics.listen`, in the
//! Prometheus text format (version 0.0.4). Opt-in: without a `[metrics]`
//! table nothing listens.
//!
//! Each scrape asks the owner task for one [`AgentStats`] snapshot (the
//! same `Input::Stats` request `rollcall ctl stats` makes; nothing locks
//! the node), brings the [`Exporter`]'s registry up to it and encodes it.
//! The core keeps plain counters; only this module knows Prometheus.
//!
//! | metric | type | labels |
//! |--------|------|--------|
//! | `rollcall_members` | gauge | `state`: alive, suspect, down |
//! | `rollcall_node_incarnation`, `_generation`, `_renewal` | gauge | |
//! | `rollcall_local_health` | gauge | |
//! | `rollcall_connections_open` | gauge | |
//! | `rollcall_probes_sent_total`, `rollcall_probes_failed_total` | counter | |
//! | `rollcall_suspicions_raised_total` | counter | `cause`: probe, network_evidence |
//! | `rollcall_suspicions_refuted_total` | counter | |
//! | `rollcall_members_declared_down_total` | counter | |
//! | `rollcall_datagrams_received_total`, `_sent_total` | counter | |
//! | `rollcall_received_bytes_total`, `rollcall_sent_bytes_total` | counter | |
//! | `rollcall_datagrams_dropped_total` | counter | `reason` (see [`AgentStats::dropped`]) |
//! | `rollcall_datagrams_unsent_total` | counter | `reason` (see [`AgentStats::unsent`]) |
//! | `rollcall_port_unreachable_total` | counter | |
//! | `rollcall_sync_rounds_total`, `_datagrams_sent_total`, `rollcall_sync_sent_bytes_total` | counter | |
//! | `rollcall_autoheal_runs_total` | counter | `outcome`: won, lost |
//! | `rollcall_autoclean_removals_total` | counter | |
//! | `rollcall_discovery_runs_total`, `_failures_total` | counter | `strategy` |
//!
//! The HTTP side is a small, strict HTTP/1.1 server of our own (`http`):
//! one route, one request per connection, bounded in size (8 KiB), time
//! (5 s each way) and concurrency (16 connections). A full HTTP stack
//! (hyper with hyper-util) would bring more code than the one route needs,
//! into every build of the agent.

mod http;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use prometheus_client::encoding::prometheus_text::{self, CONTENT_TYPE};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::{Registry, Unit};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

use super::agent::AgentHandle;
use super::config::MetricsConfig;
use super::stats::AgentStats;
use http::{Head, Route};

/// How many scrapes may be in progress at once; more connections are
/// closed at once.
const MAX_CONNECTIONS: usize = 16;

/// Why the endpoint could not start.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    /// The address could not be bound (in use, not local, no permission).
    /// Nothing listens.
    #[error("cannot listen for metrics on {addr} (metrics.listen): {error}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        error: std::io::Error,
    },
}

/// A listening metrics endpoint; stops listening when dropped.
#[derive(Debug)]
pub struct MetricsServer {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl MetricsServer {
    /// Listens on `config.listen` and serves the counters of the agent
    /// behind `handle`.
    pub async fn start(config: &MetricsConfig, handle: AgentHandle) -> Result<Self, MetricsError> {
        let bind_error = |error| MetricsError::Bind {
            addr: config.listen,
            error,
        };
        let listener = TcpListener::bind(config.listen).await.map_err(bind_error)?;
        let addr = listener.local_addr().map_err(bind_error)?;
        let task = tokio::spawn(serve(listener, Arc::new(Exporter::new()), handle));
        Ok(Self { addr, task })
    }

    /// The address it listens on (the real port when `listen` gave 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(listener: TcpListener, exporter: Arc<Exporter>, handle: AgentHandle) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                // Over the limit the connection is dropped: closed unanswered.
                if let Ok(slot) = Arc::clone(&slots).try_acquire_owned() {
                    let (exporter, handle) = (Arc::clone(&exporter), handle.clone());
                    tokio::spawn(async move {
                        connection(stream, &exporter, &handle).await;
                        drop(slot);
                    });
                }
            }
            Err(e) => {
                tracing::warn!("metrics: accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

async fn connection(mut stream: TcpStream, exporter: &Exporter, handle: &AgentHandle) {
    let mut buf = Vec::with_capacity(1024);
    let answer = match http::read_head(&mut stream, &mut buf).await {
        Head::Closed => return,
        Head::TimedOut => http::plain(408, "request timeout"),
        Head::TooLarge => http::plain(400, "request head too large"),
        Head::Truncated => http::plain(400, "incomplete request"),
        Head::Complete(len) => match http::route(&buf[..len]) {
            Route::Metrics { head_only } => match handle.stats().await {
                Ok(stats) => {
                    let body = exporter.scrape(&stats);
                    http::response(200, CONTENT_TYPE, &body, head_only)
                }
                Err(e) => http::plain(503, &e.to_string()),
            },
            Route::NotFound => http::plain(404, "not found: the metrics are at /metrics"),
            Route::MethodNotAllowed => http::plain(405, "only GET and HEAD"),
            Route::Bad(why) => http::plain(400, why),
        },
    };
    let _ = tokio::time::timeout(http::WRITE_TIMEOUT, async {
        stream.write_all(&answer).await?;
        stream.shutdown().await
    })
    .await;
    // Closing with unread bytes (a refused request's rest) would reset the
    // connection and could take the answer with it: read until the client
    // closes, within bounds.
    let _ = tokio::time::timeout(http::LINGER, async {
        let mut rest = (&mut stream).take(http::MAX_LINGER_BYTES);
        tokio::io::copy(&mut rest, &mut tokio::io::sink()).await
    })
    .await;
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabel {
    state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CauseLabel {
    cause: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabel {
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StrategyLabel {
    strategy: String,
}

/// The registry, built once, and its metrics as typed fields.
///
/// Counters move by the difference between a snapshot and what they hold
/// (the node's counters only grow); gauges are set. [`scrape`](Self::scrape)
/// does both and encodes under one lock, so two scrapes at once never add
/// a difference twice.
pub struct Exporter {
    registry: Registry,
    metrics: Metrics,
    scraping: Mutex<()>,
}

#[derive(Default)]
struct Metrics {
    members: Family<StateLabel, Gauge>,
    incarnation: Gauge,
    generation: Gauge,
    renewal: Gauge,
    health: Gauge,
    connections: Gauge,
    probes_sent: Counter,
    probes_failed: Counter,
    suspicions_raised: Family<CauseLabel, Counter>,
    suspicions_refuted: Counter,
    declared_down: Counter,
    datagrams_received: Counter,
    datagrams_sent: Counter,
    bytes_received: Counter,
    bytes_sent: Counter,
    dropped: Family<ReasonLabel, Counter>,
    unsent: Family<ReasonLabel, Counter>,
    port_unreachable: Counter,
    sync_rounds: Counter,
    sync_datagrams: Counter,
    sync_bytes: Counter,
    autoheal: Family<OutcomeLabel, Counter>,
    autoclean: Counter,
    discovery_runs: Family<StrategyLabel, Counter>,
    discovery_failures: Family<StrategyLabel, Counter>,
}

impl Exporter {
    /// A registry with every rollcall metric. Each scrape sets every label
    /// value the agent knows of, zeros included.
    pub fn new() -> Self {
        let m = Metrics::default();
        let mut r = Registry::with_prefix("rollcall");
        r.register(
            "members",
            "Members this node knows, by state (itself excluded; departed nodes in none)",
            m.members.clone(),
        );
        r.register(
            "node_incarnation",
            "This node's SWIM incarnation (0 under a new identity, raised by each refutation)",
            m.incarnation.clone(),
        );
        r.register(
            "node_generation",
            "This node's generation: its start time in milliseconds since the Unix epoch, raised by a join after a leave",
            m.generation.clone(),
        );
        r.register(
            "node_renewal",
            "This node's renewal within its generation (raised when it comes back under a new identity)",
            m.renewal.clone(),
        );
        r.register(
            "local_health",
            "Lifeguard local health: 0 is healthy, 7 the worst (probes 8 times slower)",
            m.health.clone(),
        );
        r.register(
            "connections_open",
            "QUIC connections open now (0 over UDP)",
            m.connections.clone(),
        );
        r.register(
            "probes_sent",
            "Probes this node started",
            m.probes_sent.clone(),
        );
        r.register(
            "probes_failed",
            "Probes of this node's that failed (each a suspicion it raised)",
            m.probes_failed.clone(),
        );
        r.register(
            "suspicions_raised",
            "Suspicions this node raised, by cause: a failed probe, or network evidence (port unreachable)",
            m.suspicions_raised.clone(),
        );
        r.register(
            "suspicions_refuted",
            "Suspicions of this node it refuted (each raised its incarnation)",
            m.suspicions_refuted.clone(),
        );
        r.register(
            "members_declared_down",
            "Members this node reported down",
            m.declared_down.clone(),
        );
        r.register(
            "datagrams_received",
            "Datagrams the node received",
            m.datagrams_received.clone(),
        );
        r.register(
            "datagrams_sent",
            "Datagrams the node handed to the transport",
            m.datagrams_sent.clone(),
        );
        r.register_with_unit(
            "received",
            "Bytes in the datagrams the node received",
            Unit::Bytes,
            m.bytes_received.clone(),
        );
        r.register_with_unit(
            "sent",
            "Bytes in the datagrams the node handed to the transport, envelope included",
            Unit::Bytes,
            m.bytes_sent.clone(),
        );
        r.register(
            "datagrams_dropped",
            "Datagrams received and dropped before they changed anything, by reason",
            m.dropped.clone(),
        );
        r.register(
            "datagrams_unsent",
            "Datagrams the node handed over that were never sent, by reason",
            m.unsent.clone(),
        );
        r.register(
            "port_unreachable",
            "Reports that nothing listened at a destination's port (ICMP port unreachable)",
            m.port_unreachable.clone(),
        );
        r.register(
            "sync_rounds",
            "Full-state sync sessions this node opened",
            m.sync_rounds.clone(),
        );
        r.register(
            "sync_datagrams_sent",
            "Full-state sync datagrams sent",
            m.sync_datagrams.clone(),
        );
        r.register_with_unit(
            "sync_sent",
            "Bytes of full-state sync datagrams sent, envelope included",
            Unit::Bytes,
            m.sync_bytes.clone(),
        );
        r.register(
            "autoheal_runs",
            "Partitions autoheal settled, by outcome for this node's side: won (the other side rejoins) or lost (this node rejoined the winner)",
            m.autoheal.clone(),
        );
        r.register(
            "autoclean_removals",
            "Names autoclean forgot: members down longer than cluster.autoclean, and expired tombstones",
            m.autoclean.clone(),
        );
        r.register(
            "discovery_runs",
            "Discovery rounds, by strategy",
            m.discovery_runs.clone(),
        );
        r.register(
            "discovery_failures",
            "Discovery rounds that failed, by strategy",
            m.discovery_failures.clone(),
        );
        Self {
            registry: r,
            metrics: m,
            scraping: Mutex::new(()),
        }
    }

    /// Brings every metric up to `stats` and encodes the registry in the
    /// Prometheus text format.
    pub fn scrape(&self, stats: &AgentStats) -> String {
        // A scrape that panicked left nothing half-done that matters.
        let _guard = self.scraping.lock().unwrap_or_else(|e| e.into_inner());
        self.update(stats);
        let mut out = String::with_capacity(8 * 1024);
        // Writing into a String cannot fail.
        let _ = prometheus_text::encode(&mut out, &self.registry);
        out
    }

    fn update(&self, s: &AgentStats) {
        let (m, n, l) = (&self.metrics, &s.node, &s.node.lifeguard);
        for (state, count) in [
            ("alive", s.members.alive),
            ("suspect", s.members.suspect),
            ("down", s.members.down),
        ] {
            set(&m.members.get_or_create(&StateLabel { state }), count);
        }
        set(&m.incarnation, s.incarnation.into());
        set(&m.generation, s.generation);
        set(&m.renewal, s.renewal.into());
        set(&m.health, l.health.into());
        set(&m.connections, s.connections_open as u64);
        raise(&m.probes_sent, l.probes_sent);
        raise(&m.probes_failed, l.probes_failed);
        for (cause, count) in [
            ("probe", l.probes_failed),
            ("network_evidence", n.evidence.suspected),
        ] {
            raise(
                &m.suspicions_raised.get_or_create(&CauseLabel { cause }),
                count,
            );
        }
        raise(&m.suspicions_refuted, n.refuted);
        raise(&m.declared_down, n.members_down);
        raise(&m.datagrams_received, n.datagrams_received);
        raise(&m.datagrams_sent, n.datagrams_sent);
        raise(&m.bytes_received, n.bytes_received);
        raise(&m.bytes_sent, n.bytes_sent);
        for (reason, count) in s.dropped() {
            raise(&m.dropped.get_or_create(&ReasonLabel { reason }), count);
        }
        for (reason, count) in s.unsent() {
            raise(&m.unsent.get_or_create(&ReasonLabel { reason }), count);
        }
        raise(&m.port_unreachable, s.transport.unreachable);
        raise(&m.sync_rounds, n.sync.sessions_started);
        raise(&m.sync_datagrams, n.sync.datagrams_sent);
        raise(&m.sync_bytes, n.sync.bytes_sent);
        for (outcome, count) in [("won", n.autoheal_won), ("lost", n.autoheal_lost)] {
            raise(&m.autoheal.get_or_create(&OutcomeLabel { outcome }), count);
        }
        raise(&m.autoclean, n.autoclean_removed);
        let strategy = StrategyLabel {
            strategy: s.discovery.strategy.clone(),
        };
        raise(&m.discovery_runs.get_or_create(&strategy), s.discovery.runs);
        raise(
            &m.discovery_failures.get_or_create(&strategy),
            s.discovery.failures,
        );
    }
}

impl Default for Exporter {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for Exporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Exporter").finish_non_exhaustive()
    }
}

/// Moves a counter up to `to` (a snapshot lower than what it holds, from a
/// scrape that raced another, leaves it).
fn raise(counter: &Counter, to: u64) {
    let now = counter.get();
    if to > now {
        counter.inc_by(to - now);
    }
}

fn set(gauge: &Gauge, to: u64) {
    gauge.set(i64::try_from(to).unwrap_or(i64::MAX));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scrape_exports_every_metric_with_its_type_and_values() {
        let e = Exporter::new();
        let mut s = AgentStats::default();
        s.members.alive = 2;
        s.node.datagrams_received = 10;
        s.node.bytes_received = 1000;
        s.node.dropped.bad_seal = 3;
        s.node.autoheal_lost = 1;
        s.generation = 1_764_000_000_000;
        s.discovery.strategy = "static".into();
        s.discovery.runs = 4;
        let text = e.scrape(&s);
        for line in [
            "# TYPE rollcall_members gauge",
            "rollcall_members{state=\"alive\"} 2",
            "rollcall_members{state=\"suspect\"} 0",
            "# TYPE rollcall_datagrams_received_total counter",
            "rollcall_datagrams_received_total 10",
            "rollcall_received_bytes_total 1000",
            "rollcall_datagrams_dropped_total{reason=\"bad_seal\"} 3",
            "rollcall_datagrams_dropped_total{reason=\"other_cluster\"} 0",
            "rollcall_autoheal_runs_total{outcome=\"lost\"} 1",
            "rollcall_node_generation 1764000000000",
            "rollcall_discovery_runs_total{strategy=\"static\"} 4",
            "rollcall_discovery_failures_total{strategy=\"static\"} 0",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "{line:?} missing in\n{text}"
            );
        }
        // Counters follow the snapshot; an older one moves nothing back.
        s.node.datagrams_received = 15;
        assert!(e
            .scrape(&s)
            .contains("\nrollcall_datagrams_received_total 15\n"));
        s.node.datagrams_received = 12;
        assert!(e
            .scrape(&s)
            .contains("\nrollcall_datagrams_received_total 15\n"));
    }
}
