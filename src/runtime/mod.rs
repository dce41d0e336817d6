//! The tokio runtime: a real node over UDP or QUIC, driven by one task that owns the
//! [`Node`](crate::core::Node).
//!
//! | file | concept |
//! |------|---------|
//! | `addressing` | where the node binds and is reached, and over which transport, worked out once |
//! | [`agent`] | [`Agent`] and [`AgentHandle`]: start a node, read its status, issue commands, subscribe to events |
//! | `driver` | the one task that owns the `Node` and selects over socket, deadline and inputs |
//! | `inputs` | what the rest of the agent asks of that task |
//! | [`AgentStats`] | what a running agent counts |
//! | `clock` | tokio's clock as the core's [`Time`](crate::core::Time), and as dates |
//! | [`history`] | the last events the agent reported, for a monitor's replay |
//! | [`monitor`] | `ctl monitor`: events as JSON lines over the control socket |
//! | [`verbose`] | `ctl cluster status --verbose`: each node's state and since when |
//! | [`config`] | [`AgentConfig`]: the TOML file, environment overrides, validation |
//! | [`transport`] | the [`Transport`] trait; the UDP, QUIC and in-memory transports |
//! | [`discovery`] | the [`Discovery`] trait, the manual, static, DNS, etcd and Kubernetes strategies, seed resolution |
//! | [`control`] | the local control socket that `rollcall ctl` talks to |
//! | `metrics` | the opt-in Prometheus endpoint, `GET /metrics` (feature `metrics`) |
//! | [`signal`] | SIGINT and SIGTERM, the agent's cue to leave and exit |
//!
//! Nothing here listens on the network except the gossip transport and, if
//! `[metrics]` asks for it, the metrics endpoint: control goes through a
//! Unix socket (mode 0600) in the node's data directory.

mod addressing;
pub mod agent;
mod clock;
pub mod config;
pub mod control;
pub mod discovery;
mod driver;
pub mod history;
mod inputs;
#[cfg(feature = "metrics")]
pub mod metrics;
pub mod monitor;
pub mod signal;
mod stats;
pub mod transport;
pub mod verbose;

pub use agent::{Agent, AgentError, AgentHandle};
pub use config::{AgentConfig, AgentConfigError, DiscoveryStrategy, MetricsConfig, ProtoDist};
pub use control::ControlServer;
pub use discovery::{Discovery, DiscoveryError};
#[cfg(feature = "metrics")]
pub use metrics::MetricsServer;
pub use stats::{AgentStats, DiscoveryStats};
pub use transport::{Transport, TransportStats};
