//! [`AgentConfig`]: the agent's TOML file, with keys mirroring emqx.conf and
//! environment overrides in EMQX's style.
//!
//! ```toml
//! [node]
//! name = "rollcall@127.0.0.1"     # name@host; the host is an IP or a domain name
//! cookie = "a secret cookie"      # shared by every node of the cluster
//! data_dir = "data"               # holds the control socket (rollcall.sock)
//! # bind = "0.0.0.0"              # override the gossip bind address (IP or IP:port)
//!
//! [cluster]
//! name = "rollcall"
//! discovery_strategy = "manual"   # manual | static | dns | etcd | k8s
//! proto_dist = "udp"              # udp | udp6 | quic | quic6
//! base_port = 4370                # gossip port of `name@host`; `name3@host` adds 3
//! autoheal = true
//! network_evidence = true         # "port unreachable" from a member's host: suspect it on a short timeout
//! lifeguard = true                # tell suspects, confirm suspicions, slow nodes probe slower
//! autoclean = "24h"              # or "off"
//! profile = "lan"                 # lan | wan | local
//! expected_size = 16              # about how many nodes: tunes gossip and suspicion
//! max_datagram_size = 1400
//! discovery_interval = "30s"      # rediscovery while in a cluster
//! discovery_interval_alone = "5s" # rediscovery while alone
//!
//! [cluster.quic]                  # proto_dist = "quic" or "quic6" (EMQX's ssl_dist.conf)
//! # certfile = "node.pem"         # this node's certificate chain
//! # keyfile = "node-key.pem"
//! # cacertfile = "ca.pem"         # peers' certificates must chain to it
//! # verify = "verify_peer"        # verify_peer (mutual TLS) | verify_none
//! #                               # no files: a self-signed certificate, peers
//! #                               # authenticated by the cookie alone
//!
//! [cluster.static]
//! seeds = ["rollcall@127.0.0.1", "rollcall1@127.0.0.1"]
//!
//! [cluster.dns]                   # discovery_strategy = "dns"
//! name = "rollcall.example.com"   # required
//! record_type = "a"               # a | aaaa | srv
//! # server = "10.0.0.53:53"       # default: the system resolver
//!
//! [cluster.etcd]                  # discovery_strategy = "etcd"
//! server = "http://127.0.0.1:2379"  # required; comma-separated URLs
//! prefix = "rollcall"             # keys: /<prefix>/<cluster.name>/nodes/<node.name>
//! node_ttl = "1m"                 # a crashed node's key lives this long
//! # [cluster.etcd.ssl]            # with https:// servers
//! # cacertfile = "ca.pem"         # required for TLS
//! # certfile = "client.pem"       # client certificate, with keyfile
//! # keyfile = "client-key.pem"
//!
//! [cluster.k8s]                   # discovery_strategy = "k8s"
//! apiserver = "https://kubernetes.default.svc:443"
//! service_name = "rollcall"       # required: the (headless) Service
//! namespace = "default"
//! address_type = "ip"             # ip | dns | hostname
//! suffix = "pod.local"            # for dns and hostname names
//!
//! [metrics]                       # absent: nothing listens
//! listen = "127.0.0.1:9100"       # GET /metrics, Prometheus text format
//! ```
//!
//! Every key is optional. An environment variable `ROLLCALL_<SECTION>__<KEY>`
//! overrides the key `section.key` (`ROLLCALL_NODE__NAME`,
//! `ROLLCALL_CLUSTER__STATIC__SEEDS` as a comma list, ...). Unknown keys, in
//! the file or the environment, are errors that name the key.

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;

use crate::core::config::DEFAULT_COOKIE;
use crate::core::name::DEFAULT_BASE_PORT;
use crate::core::{Config, Cookie, NodeName, Profile};
use crate::runtime::discovery::settings::{
    DnsConfig, EtcdConfig, K8sConfig, RawDns, RawEtcd, RawK8s,
};

/// The prefix of environment variables that override config keys.
pub const ENV_PREFIX: &str = "ROLLCALL_";

/// The node name used when none is configured.
pub const DEFAULT_NODE_NAME: &str = "rollcall@127.0.0.1";

/// How a node finds the others (`cluster.discovery_strategy`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DiscoveryStrategy {
    /// Only through `rollcall ctl cluster join` (the default).
    Manual,
    /// A fixed list of seed nodes (`cluster.static.seeds`).
    Static {
        /// The seeds, at least one.
        seeds: Vec<NodeName>,
    },
    /// DNS A, AAAA or SRV records (`cluster.dns`).
    Dns(DnsConfig),
    /// An etcd registry (`cluster.etcd`).
    Etcd(EtcdConfig),
    /// A Kubernetes Service's endpoints (`cluster.k8s`).
    K8s(K8sConfig),
}

impl DiscoveryStrategy {
    /// The name as `cluster.discovery_strategy` spells it.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Manual => "manual",
            Self::Static { .. } => "static",
            Self::Dns(_) => "dns",
            Self::Etcd(_) => "etcd",
            Self::K8s(_) => "k8s",
        }
    }
}

/// The gossip transport (`cluster.proto_dist`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProtoDist {
    /// UDP; binds `0.0.0.0` unless the node's host is an IP (the default).
    Udp,
    /// UDP; binds `[::]` unless the node's host is an IP.
    Udp6,
    /// QUIC datagrams over TLS connections (`[cluster.quic]`); binds
    /// `0.0.0.0` unless the node's host is an IP.
    Quic,
    /// QUIC; binds `[::]` unless the node's host is an IP.
    Quic6,
}

impl fmt::Display for ProtoDist {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Udp => "udp",
            Self::Udp6 => "udp6",
            Self::Quic => "quic",
            Self::Quic6 => "quic6",
        })
    }
}

/// Everything an agent runs with, validated.
#[derive(Clone, Debug)]
pub struct AgentConfig {
    /// `node.name`: the node's name, `name@host`.
    pub name: NodeName,
    /// `node.cookie`: the cluster's shared secret. The default works but the
    /// agent logs a warning.
    pub cookie: Cookie,
    /// `node.data_dir`: where the control socket lives.
    pub data_dir: PathBuf,
    /// `node.bind`: where the gossip socket binds, overriding the default
    /// (the host's IP when the name holds one, else the unspecified address;
    /// the port by the convention).
    pub bind: Option<SocketAddr>,
    /// `cluster.name`: nodes of clusters with other names drop each other's
    /// datagrams unopened.
    pub cluster_name: String,
    /// `cluster.discovery_strategy` (and `cluster.static.seeds`).
    pub discovery: DiscoveryStrategy,
    /// `cluster.proto_dist`.
    pub proto_dist: ProtoDist,
    /// `[cluster.quic]`: certificates and peer verification, for `quic`
    /// and `quic6`.
    #[cfg(feature = "quic")]
    pub quic: crate::runtime::transport::QuicCertConfig,
    /// `cluster.base_port`: `name@host` gossips on it, `nameN@host` on it + N.
    pub base_port: u16,
    /// `cluster.autoheal`: the sides of a healed partition merge by
    /// themselves (the smaller side rejoins the larger).
    pub autoheal: bool,
    /// `cluster.network_evidence`: a member whose host answers "port
    /// unreachable" (its process is gone) is suspected at once, on a short
    /// timeout, instead of after failed probes and the suspicion timeout.
    pub network_evidence: bool,
    /// `cluster.lifeguard`: Lifeguard on top of SWIM (suspects are told,
    /// suspicions wait for confirmations, a slow node probes slower); see
    /// [`Config::lifeguard`](crate::core::Config::lifeguard).
    pub lifeguard: bool,
    /// `cluster.autoclean`: every node forgets a member down longer than
    /// this (and tombstones of departed nodes); `None` (`"off"`) keeps them.
    pub autoclean: Option<Duration>,
    /// `cluster.profile`: SWIM timings (lan, wan, or local for one host).
    pub profile: Profile,
    /// `cluster.expected_size`: about how many nodes the cluster will have;
    /// tunes retransmissions and suspicion time.
    pub expected_size: u32,
    /// `cluster.max_datagram_size`: the largest datagram sent or accepted.
    pub max_datagram_size: usize,
    /// `cluster.discovery_interval_alone`: rediscovery while alone.
    pub discovery_interval_alone: Duration,
    /// `cluster.discovery_interval`: rediscovery while in a cluster.
    pub discovery_interval: Duration,
    /// `[metrics]`: the Prometheus endpoint; `None` (no table) serves none.
    pub metrics: Option<MetricsConfig>,
}

/// `[metrics]`: where the agent serves its counters in the Prometheus text
/// format (see [`crate::runtime::metrics`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MetricsConfig {
    /// `metrics.listen`: the TCP address, `IP:port` (`"127.0.0.1:9100"`).
    /// Required in the table. The endpoint has no authentication: bind it
    /// to loopback or a private network.
    pub listen: SocketAddr,
}

/// Why a configuration was refused. Nothing was started.
#[derive(Debug, thiserror::Error)]
pub enum AgentConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {error}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        error: std::io::Error,
    },
    /// The file is not TOML.
    #[error("{origin}:{line}:{column}: {message}")]
    Syntax {
        /// The file (or `<config>`).
        origin: String,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// The parser's message.
        message: String,
    },
    /// A key is unknown or its value is wrong.
    #[error("{origin}: {key}: {message}")]
    Key {
        /// The file, or the environment variable that set the key.
        origin: String,
        /// The key, dotted (`cluster.autoclean`).
        key: String,
        /// What is wrong.
        message: String,
    },
}

impl AgentConfig {
    /// The defaults for a node named `name` (manual discovery, LAN profile,
    /// the default cookie, `data_dir = "data"`).
    pub fn new(name: NodeName) -> Self {
        Self {
            name,
            cookie: Cookie::default(),
            data_dir: PathBuf::from("data"),
            bind: None,
            cluster_name: "rollcall".to_owned(),
            discovery: DiscoveryStrategy::Manual,
            proto_dist: ProtoDist::Udp,
            #[cfg(feature = "quic")]
            quic: Default::default(),
            base_port: DEFAULT_BASE_PORT,
            autoheal: true,
            network_evidence: true,
            lifeguard: true,
            autoclean: Some(crate::core::config::DEFAULT_AUTOCLEAN),
            profile: Profile::Lan,
            expected_size: 16,
            max_datagram_size: 1400,
            discovery_interval_alone: Duration::from_secs(5),
            discovery_interval: Duration::from_secs(30),
            metrics: None,
        }
    }

    /// Reads `path` (or only defaults when `None`), then applies the
    /// `ROLLCALL_*` variables of this process's environment.
    pub fn load(path: Option<&Path>) -> Result<Self, AgentConfigError> {
        let (text, origin) = match path {
            Some(p) => (
                std::fs::read_to_string(p).map_err(|error| AgentConfigError::Read {
                    path: p.to_owned(),
                    error,
                })?,
                p.display().to_string(),
            ),
            None => (String::new(), "<defaults>".to_owned()),
        };
        Self::from_toml(&text, &origin, std::env::vars())
    }

    /// Parses TOML `text` (named `origin` in errors), applies the overrides
    /// among `env` (name, value pairs: those named `ROLLCALL_X__Y`), and
    /// validates the result.
    pub fn from_toml(
        text: &str,
        origin: &str,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, AgentConfigError> {
        let mut table: toml::Table = toml::from_str(text).map_err(|e| {
            let (line, column) = e
                .span()
                .map(|s| line_column(text, s.start))
                .unwrap_or((1, 1));
            AgentConfigError::Syntax {
                origin: origin.to_owned(),
                line,
                column,
                message: one_line(e.message()),
            }
        })?;
        let overrides = apply_env(&mut table, env)?;
        let key_error = |key: String, message: String| {
            let origin = overrides
                .iter()
                .find(|(k, _)| **k == key)
                .map(|(_, var)| format!("environment variable {var}"))
                .unwrap_or_else(|| origin.to_owned());
            AgentConfigError::Key {
                origin,
                key,
                message,
            }
        };
        let raw: RawConfig =
            serde_path_to_error::deserialize(toml::Value::Table(table)).map_err(|e| {
                let message = one_line(e.inner().message());
                let key = e.path().to_string();
                key_error(key, message)
            })?;
        raw.validate()
            .map_err(|(key, message)| key_error(key, message))
    }

    /// The gossip port, by the convention.
    pub fn gossip_port(&self) -> Result<u16, crate::core::name::PortError> {
        self.name.port(self.base_port)
    }

    /// The core configuration this implies.
    pub fn core_config(&self) -> Config {
        let mut config = Config::profile(self.profile, self.expected_size)
            .with_cluster(self.cluster_name.clone(), self.cookie.clone());
        config.max_datagram_size = self.max_datagram_size;
        config.autoclean = self.autoclean;
        config.autoheal = self.autoheal;
        config.network_evidence = self.network_evidence;
        config.lifeguard = self.lifeguard;
        config.rediscovery = crate::core::RediscoveryConfig {
            alone: self.discovery_interval_alone,
            in_cluster: self.discovery_interval,
        };
        config
    }
}

impl Default for AgentConfig {
    fn default() -> Self {
        Self::new(default_name())
    }
}

fn default_name() -> NodeName {
    NodeName::parse(DEFAULT_NODE_NAME).expect("the default node name is valid")
}

/// The parser's message without the `in `key`` lines it appends.
fn one_line(message: &str) -> String {
    message
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("in `"))
        .collect::<Vec<_>>()
        .join("; ")
}

fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.chars().rev().take_while(|c| *c != '\n').count() + 1;
    (line, column)
}

/// Writes every `ROLLCALL_A__B` variable into the table as `a.b`; returns
/// the dotted keys set, with the variable that set each.
fn apply_env(
    table: &mut toml::Table,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<BTreeMap<String, String>, AgentConfigError> {
    let mut set = BTreeMap::new();
    for (var, value) in env {
        let Some(rest) = var.strip_prefix(ENV_PREFIX) else {
            continue;
        };
        if !rest.contains("__") {
            continue;
        }
        let path: Vec<String> = rest.split("__").map(str::to_ascii_lowercase).collect();
        let key = path.join(".");
        let bad = |message: &str| AgentConfigError::Key {
            origin: format!("environment variable {var}"),
            key: key.clone(),
            message: message.to_owned(),
        };
        if path.iter().any(String::is_empty) {
            return Err(bad("empty key segment"));
        }
        let value = if key == "cluster.static.seeds" {
            toml::Value::Array(
                value
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(|s| toml::Value::String(s.to_owned()))
                    .collect(),
            )
        } else {
            toml::Value::String(value)
        };
        let (last, parents) = path.split_last().expect("split yields one segment");
        let mut at = &mut *table;
        for segment in parents {
            let entry = at
                .entry(segment.clone())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            at = entry
                .as_table_mut()
                .ok_or_else(|| bad(&format!("{segment} is not a table")))?;
        }
        at.insert(last.clone(), value);
        set.insert(key, var);
    }
    Ok(set)
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    node: RawNode,
    #[serde(default)]
    cluster: RawCluster,
    metrics: Option<RawMetrics>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
struct RawMetrics {
    listen: Option<String>,
}

impl RawMetrics {
    /// `[metrics]`, checked; errors are (key, message).
    fn validate(self) -> Result<MetricsConfig, (String, String)> {
        let err = |message: String| ("metrics.listen".to_owned(), message);
        let text = self.listen.ok_or_else(|| {
            err("is required in [metrics] (an IP:port such as \"127.0.0.1:9100\")".into())
        })?;
        if !cfg!(feature = "metrics") {
            return Err(err(
                "Prometheus metrics are not in this build (cargo feature `metrics`)".into(),
            ));
        }
        let listen = text.trim().parse().map_err(|_| {
            err(format!(
                "{text:?} is not an IP:port address (such as \"127.0.0.1:9100\")"
            ))
        })?;
        Ok(MetricsConfig { listen })
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawNode {
    name: NodeName,
    cookie: String,
    data_dir: PathBuf,
    bind: Option<String>,
}

impl Default for RawNode {
    fn default() -> Self {
        Self {
            name: default_name(),
            cookie: DEFAULT_COOKIE.to_owned(),
            data_dir: PathBuf::from("data"),
            bind: None,
        }
    }
}

#[derive(Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum RawStrategy {
    Manual,
    Static,
    Dns,
    Etcd,
    #[serde(alias = "K8s", alias = "K8S")]
    K8s,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "lowercase")]
enum RawProfile {
    Lan,
    Wan,
    Local,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawCluster {
    name: String,
    discovery_strategy: RawStrategy,
    proto_dist: ProtoDist,
    #[serde(deserialize_with = "lenient")]
    base_port: u16,
    #[serde(deserialize_with = "lenient")]
    autoheal: bool,
    #[serde(deserialize_with = "lenient")]
    network_evidence: bool,
    #[serde(deserialize_with = "lenient")]
    lifeguard: bool,
    #[serde(deserialize_with = "duration_or_off")]
    autoclean: Option<Duration>,
    profile: RawProfile,
    #[serde(deserialize_with = "lenient")]
    expected_size: u32,
    #[serde(deserialize_with = "lenient")]
    max_datagram_size: usize,
    #[serde(deserialize_with = "duration")]
    discovery_interval: Duration,
    #[serde(deserialize_with = "duration")]
    discovery_interval_alone: Duration,
    #[serde(rename = "static")]
    static_: RawStatic,
    dns: RawDns,
    etcd: RawEtcd,
    #[serde(alias = "K8s")]
    k8s: RawK8s,
    #[cfg(feature = "quic")]
    quic: crate::runtime::transport::QuicCertConfig,
    /// Without QUIC in the build, a `[cluster.quic]` table is refused.
    #[cfg(not(feature = "quic"))]
    quic: Option<toml::Table>,
}

impl Default for RawCluster {
    fn default() -> Self {
        let d = AgentConfig::new(default_name());
        Self {
            name: d.cluster_name,
            discovery_strategy: RawStrategy::Manual,
            proto_dist: d.proto_dist,
            base_port: d.base_port,
            autoheal: d.autoheal,
            network_evidence: d.network_evidence,
            lifeguard: d.lifeguard,
            autoclean: d.autoclean,
            profile: RawProfile::Lan,
            expected_size: d.expected_size,
            max_datagram_size: d.max_datagram_size,
            discovery_interval: d.discovery_interval,
            discovery_interval_alone: d.discovery_interval_alone,
            static_: RawStatic::default(),
            dns: RawDns::default(),
            etcd: RawEtcd::default(),
            k8s: RawK8s::default(),
            quic: Default::default(),
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
struct RawStatic {
    seeds: Vec<NodeName>,
}

impl RawConfig {
    /// The checks serde cannot make; errors are (key, message).
    fn validate(self) -> Result<AgentConfig, (String, String)> {
        let err = |key: &str, message: String| (key.to_owned(), message);
        let metrics = self.metrics.map(RawMetrics::validate).transpose()?;
        let (node, cluster) = (self.node, self.cluster);
        if node.cookie.is_empty() {
            return Err(err("node.cookie", "must not be empty".into()));
        }
        if cluster.name.is_empty() {
            return Err(err("cluster.name", "must not be empty".into()));
        }
        let port = node
            .name
            .port(cluster.base_port)
            .map_err(|e| err("cluster.base_port", e.to_string()))?;
        let bind = match node.bind.as_deref() {
            None => None,
            Some(text) => Some(parse_bind(text, port).ok_or_else(|| {
                err(
                    "node.bind",
                    format!("{text:?} is not an IP address or an IP:port"),
                )
            })?),
        };
        let discovery =
            match cluster.discovery_strategy {
                RawStrategy::Manual => DiscoveryStrategy::Manual,
                RawStrategy::Static if cluster.static_.seeds.is_empty() => return Err(err(
                    "cluster.static.seeds",
                    "at least one seed is required when cluster.discovery_strategy is \"static\""
                        .into(),
                )),
                RawStrategy::Static => DiscoveryStrategy::Static {
                    seeds: cluster.static_.seeds,
                },
                // Only the chosen strategy's table is checked, as EMQX does.
                RawStrategy::Dns => DiscoveryStrategy::Dns(cluster.dns.validate()?),
                RawStrategy::Etcd => DiscoveryStrategy::Etcd(cluster.etcd.validate()?),
                RawStrategy::K8s => DiscoveryStrategy::K8s(cluster.k8s.validate()?),
            };
        #[cfg(not(feature = "quic"))]
        if cluster.quic.is_some() {
            return Err(err(
                "cluster.quic",
                "QUIC is not in this build (cargo feature `quic`)".into(),
            ));
        }
        for (key, d) in [
            ("cluster.discovery_interval", cluster.discovery_interval),
            (
                "cluster.discovery_interval_alone",
                cluster.discovery_interval_alone,
            ),
        ] {
            if d.is_zero() {
                return Err(err(key, "must not be zero".into()));
            }
        }
        let config = AgentConfig {
            name: node.name,
            cookie: Cookie::new(node.cookie),
            data_dir: node.data_dir,
            bind,
            cluster_name: cluster.name,
            discovery,
            proto_dist: cluster.proto_dist,
            #[cfg(feature = "quic")]
            quic: cluster.quic,
            base_port: cluster.base_port,
            autoheal: cluster.autoheal,
            network_evidence: cluster.network_evidence,
            lifeguard: cluster.lifeguard,
            autoclean: cluster.autoclean,
            profile: match cluster.profile {
                RawProfile::Lan => Profile::Lan,
                RawProfile::Wan => Profile::Wan,
                RawProfile::Local => Profile::Local,
            },
            expected_size: cluster.expected_size,
            max_datagram_size: cluster.max_datagram_size,
            discovery_interval_alone: cluster.discovery_interval_alone,
            discovery_interval: cluster.discovery_interval,
            metrics,
        };
        config
            .core_config()
            .validate()
            .map_err(|e| err("cluster.max_datagram_size", e.to_string()))?;
        Ok(config)
    }
}

fn parse_bind(text: &str, port: u16) -> Option<SocketAddr> {
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Some(addr);
    }
    let ip = text.trim_start_matches('[').trim_end_matches(']');
    ip.parse::<IpAddr>()
        .ok()
        .map(|ip| SocketAddr::new(ip, port))
}

/// A `humantime` duration: `"24h"`, `"5s"`, `"1h 30m"`.
fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(d)?;
    humantime::parse_duration(&text)
        .map_err(|e| de::Error::custom(format!("invalid duration {text:?}: {e}")))
}

/// A duration, or `"off"` for none.
fn duration_or_off<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    let text = String::deserialize(d)?;
    if text.trim() == "off" {
        return Ok(None);
    }
    humantime::parse_duration(&text)
        .map(Some)
        .map_err(|e| de::Error::custom(format!("invalid duration {text:?} (or \"off\"): {e}")))
}

/// A number or bool written as itself or as a string (environment values
/// are strings).
fn lenient<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: std::str::FromStr + Deserialize<'de>,
    T::Err: fmt::Display,
{
    struct Lenient<T>(std::marker::PhantomData<T>);
    impl<'de, T> Visitor<'de> for Lenient<T>
    where
        T: std::str::FromStr + Deserialize<'de>,
        T::Err: fmt::Display,
    {
        type Value = T;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a number or a boolean")
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
            v.trim()
                .parse()
                .map_err(|e| E::custom(format!("invalid value {v:?}: {e}")))
        }
        fn visit_bool<E: de::Error>(self, v: bool) -> Result<T, E> {
            T::deserialize(de::value::BoolDeserializer::new(v))
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<T, E> {
            T::deserialize(de::value::I64Deserializer::new(v))
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<T, E> {
            T::deserialize(de::value::U64Deserializer::new(v))
        }
    }
    d.deserialize_any(Lenient(std::marker::PhantomData))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::discovery::settings::{DnsRecordType, K8sAddressType};

    fn parse(text: &str) -> Result<AgentConfig, AgentConfigError> {
        AgentConfig::from_toml(text, "test.toml", std::iter::empty())
    }

    fn parse_env(text: &str, env: &[(&str, &str)]) -> Result<AgentConfig, AgentConfigError> {
        let env = env.iter().map(|(k, v)| (k.to_string(), v.to_string()));
        AgentConfig::from_toml(text, "test.toml", env)
    }

    fn err(text: &str) -> String {
        parse(text).unwrap_err().to_string()
    }

    const FULL: &str = r#"
[node]
name = "rollcall@127.0.0.1"
cookie = "a secret cookie"
data_dir = "data"
[cluster]
name = "rollcall"
discovery_strategy = "static"
proto_dist = "udp"
base_port = 4370
autoheal = true
network_evidence = true
lifeguard = true
autoclean = "24h"
profile = "lan"
[cluster.static]
seeds = ["rollcall@127.0.0.1", "rollcall1@127.0.0.1"]
"#;

    #[test]
    fn the_documented_example_parses_with_every_key() {
        let c = parse(FULL).unwrap();
        assert_eq!(c.name.as_str(), "rollcall@127.0.0.1");
        assert_eq!(c.cookie, Cookie::new("a secret cookie"));
        assert_eq!(c.autoclean, Some(Duration::from_secs(86_400)));
        let core = c.core_config();
        assert_eq!(core.autoclean, Some(Duration::from_secs(86_400)));
        assert!(core.autoheal);
        assert!(core.network_evidence);
        assert!(core.lifeguard);
        let off = parse(
            "[cluster]\nautoclean = \"off\"\nautoheal = false\nnetwork_evidence = false\nlifeguard = false\n",
        )
        .unwrap();
        assert!(!off.core_config().lifeguard);
        assert_eq!(off.core_config().autoclean, None);
        assert!(!off.core_config().autoheal);
        assert!(!off.core_config().network_evidence);
        assert_eq!(c.profile, Profile::Lan);
        let DiscoveryStrategy::Static { seeds } = &c.discovery else {
            panic!("static expected, got {:?}", c.discovery);
        };
        assert_eq!(seeds.len(), 2);
        assert_eq!(c.gossip_port().unwrap(), 4370);
    }

    #[test]
    fn an_empty_file_gives_the_defaults() {
        let c = parse("").unwrap();
        assert_eq!(c.name.as_str(), DEFAULT_NODE_NAME);
        assert!(c.cookie.is_default());
        assert_eq!(c.discovery, DiscoveryStrategy::Manual);
        assert_eq!(c.proto_dist, ProtoDist::Udp);
        assert_eq!(c.data_dir, PathBuf::from("data"));
    }

    #[test]
    fn an_unknown_key_is_named_with_its_table() {
        let e = err("[cluster]\nnmae = \"x\"\n");
        assert!(
            e.starts_with("test.toml: cluster.nmae: unknown field `nmae`"),
            "{e}"
        );
        let e = err("[cluster.static]\nseedz = []\n");
        assert!(e.contains("cluster.static.seedz"), "{e}");
        let e = err("[nodes]\n");
        assert!(e.contains(": nodes: unknown field"), "{e}");
    }

    #[test]
    fn a_bad_duration_is_named_with_its_key() {
        let e = err("[cluster]\nautoclean = \"24x\"\n");
        assert!(
            e.starts_with("test.toml: cluster.autoclean: invalid duration \"24x\""),
            "{e}"
        );
    }

    #[test]
    fn a_bad_node_name_gets_the_name_parsers_error() {
        let e = err("[node]\nname = \"rollcall\"\n");
        assert!(e.starts_with("test.toml: node.name: "), "{e}");
        assert!(e.contains("has no '@host' part"), "{e}");
        let e = err("[cluster.static]\nseeds = [\"a@127.0.0.1\", \"b@\"]\n");
        assert!(e.contains("cluster.static.seeds[1]: "), "{e}");
        assert!(e.contains("empty host"), "{e}");
    }

    #[test]
    fn static_discovery_without_seeds_is_refused() {
        let e = err("[cluster]\ndiscovery_strategy = \"static\"\n");
        assert!(e.contains("cluster.static.seeds: at least one seed"), "{e}");
    }

    #[test]
    fn an_unknown_strategy_or_profile_lists_the_valid_ones() {
        let e = err("[cluster]\ndiscovery_strategy = \"zookeeper\"\n");
        assert!(
            e.contains("cluster.discovery_strategy: unknown variant"),
            "{e}"
        );
        assert!(e.contains("`static`"), "{e}");
        let e = err("[cluster]\nprofile = \"fast\"\n");
        assert!(e.contains("cluster.profile"), "{e}");
    }

    #[test]
    fn later_protocols_are_accepted_by_the_parser() {
        let c = parse("[cluster]\nproto_dist = \"quic\"\n").unwrap();
        assert_eq!(c.proto_dist, ProtoDist::Quic);
    }

    #[test]
    fn each_automatic_strategy_reads_its_own_table() {
        let c = parse(
            "[cluster]\ndiscovery_strategy = \"dns\"\n[cluster.dns]\nname = \"n.example\"\n\
             record_type = \"srv\"\nserver = \"127.0.0.1:5353\"\n",
        )
        .unwrap();
        let DiscoveryStrategy::Dns(dns) = &c.discovery else {
            panic!("dns expected, got {:?}", c.discovery);
        };
        assert_eq!(dns.record_type, DnsRecordType::Srv);
        assert_eq!(dns.server, Some("127.0.0.1:5353".parse().unwrap()));
        let c = parse(
            "[cluster]\ndiscovery_strategy = \"etcd\"\n[cluster.etcd]\n\
             server = \"http://a:2379,http://b:2379\"\nnode_ttl = \"10s\"\n",
        )
        .unwrap();
        let DiscoveryStrategy::Etcd(etcd) = &c.discovery else {
            panic!("etcd expected, got {:?}", c.discovery);
        };
        assert_eq!(etcd.servers.len(), 2);
        assert_eq!(etcd.node_ttl, Duration::from_secs(10));
        // EMQX spells the strategy and its table `K8s`.
        let c = parse(
            "[cluster]\ndiscovery_strategy = \"K8s\"\n[cluster.K8s]\nservice_name = \"rc\"\n\
             address_type = \"hostname\"\n",
        )
        .unwrap();
        let DiscoveryStrategy::K8s(k8s) = &c.discovery else {
            panic!("k8s expected, got {:?}", c.discovery);
        };
        assert_eq!(k8s.address_type, K8sAddressType::Hostname);
        // Another strategy's table is not checked.
        parse("[cluster]\ndiscovery_strategy = \"manual\"\n[cluster.dns]\nrecord_type = \"a\"\n")
            .unwrap();
    }

    #[test]
    fn a_broken_discovery_table_is_refused_naming_the_key() {
        let e = err("[cluster]\ndiscovery_strategy = \"dns\"\n");
        assert!(
            e.starts_with("test.toml: cluster.dns.name: is required"),
            "{e}"
        );
        let e = err("[cluster]\ndiscovery_strategy = \"dns\"\n[cluster.dns]\nname = \"n\"\nrecord_type = \"mx\"\n");
        assert!(
            e.starts_with("test.toml: cluster.dns.record_type: unknown variant `mx`"),
            "{e}"
        );
        let e = err("[cluster]\ndiscovery_strategy = \"etcd\"\n[cluster.etcd]\nserver = \"localhost:2379\"\n");
        assert!(e.starts_with("test.toml: cluster.etcd.server: "), "{e}");
        let e =
            err("[cluster]\ndiscovery_strategy = \"k8s\"\n[cluster.k8s]\nnamespace = \"prod\"\n");
        assert!(
            e.starts_with("test.toml: cluster.k8s.service_name: is required"),
            "{e}"
        );
        let e = err("[cluster.etcd]\nservers = \"http://a\"\n");
        assert!(e.contains("cluster.etcd.servers: unknown field"), "{e}");
    }

    #[test]
    fn discovery_keys_take_environment_overrides() {
        let c = parse_env(
            "[cluster]\ndiscovery_strategy = \"dns\"\n",
            &[
                ("ROLLCALL_CLUSTER__DNS__NAME", "nodes.example"),
                ("ROLLCALL_CLUSTER__DNS__RECORD_TYPE", "aaaa"),
            ],
        )
        .unwrap();
        let DiscoveryStrategy::Dns(dns) = &c.discovery else {
            panic!("dns expected");
        };
        assert_eq!(dns.name, "nodes.example");
        assert_eq!(dns.record_type, DnsRecordType::Aaaa);
        let e = parse_env(
            "[cluster]\ndiscovery_strategy = \"etcd\"\n",
            &[("ROLLCALL_CLUSTER__ETCD__SERVER", "ftp://x")],
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.starts_with(
                "environment variable ROLLCALL_CLUSTER__ETCD__SERVER: cluster.etcd.server:"
            ),
            "{e}"
        );
    }

    #[test]
    fn a_syntax_error_gives_line_and_column() {
        let e = err("[node]\nname = \n");
        assert!(e.starts_with("test.toml:2:"), "{e}");
    }

    #[test]
    fn environment_variables_override_keys_in_emqx_style() {
        let c = parse_env(
            FULL,
            &[
                ("ROLLCALL_NODE__NAME", "rc2@127.0.0.2"),
                ("ROLLCALL_NODE__COOKIE", "from env"),
                ("ROLLCALL_CLUSTER__BASE_PORT", "5000"),
                ("ROLLCALL_CLUSTER__AUTOHEAL", "false"),
                (
                    "ROLLCALL_CLUSTER__STATIC__SEEDS",
                    "a@127.0.0.1, b@127.0.0.2",
                ),
                ("ROLLCALL_CLUSTER__PROFILE", "local"),
                ("ROLLCALL_LOG", "ignored: no double underscore"),
                ("PATH", "/bin"),
            ],
        )
        .unwrap();
        assert_eq!(c.name.as_str(), "rc2@127.0.0.2");
        assert_eq!(c.cookie, Cookie::new("from env"));
        assert_eq!(c.gossip_port().unwrap(), 5002);
        assert!(!c.autoheal);
        assert_eq!(c.profile, Profile::Local);
        let DiscoveryStrategy::Static { seeds } = &c.discovery else {
            panic!("static expected");
        };
        assert_eq!(seeds[1].as_str(), "b@127.0.0.2");
    }

    #[test]
    fn a_bad_environment_value_names_the_variable() {
        let e = parse_env("", &[("ROLLCALL_CLUSTER__AUTOCLEAN", "soon")])
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("environment variable ROLLCALL_CLUSTER__AUTOCLEAN: cluster.autoclean:"),
            "{e}"
        );
        let e = parse_env("", &[("ROLLCALL_CLUSTER__NOPE", "1")])
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with(
                "environment variable ROLLCALL_CLUSTER__NOPE: cluster.nope: unknown field"
            ),
            "{e}"
        );
    }

    #[test]
    fn bind_takes_an_ip_or_an_ip_and_port() {
        let c = parse("[node]\nbind = \"0.0.0.0\"\n").unwrap();
        assert_eq!(c.bind, Some("0.0.0.0:4370".parse().unwrap()));
        let c = parse("[node]\nbind = \"[::]:9000\"\n").unwrap();
        assert_eq!(c.bind, Some("[::]:9000".parse().unwrap()));
        assert!(err("[node]\nbind = \"eth0\"\n").contains("node.bind"));
    }

    #[test]
    fn a_port_beyond_65535_is_refused_at_load() {
        let e = err("[node]\nname = \"rc9@127.0.0.1\"\n[cluster]\nbase_port = 65530\n");
        assert!(e.contains("cluster.base_port"), "{e}");
    }

    #[cfg(feature = "metrics")]
    #[test]
    fn metrics_listen_only_when_the_table_is_there() {
        assert_eq!(parse("").unwrap().metrics, None);
        let c = parse("[metrics]\nlisten = \"127.0.0.1:9100\"\n").unwrap();
        assert_eq!(c.metrics.unwrap().listen, "127.0.0.1:9100".parse().unwrap());
        let c = parse_env("", &[("ROLLCALL_METRICS__LISTEN", "[::1]:9200")]).unwrap();
        assert_eq!(c.metrics.unwrap().listen, "[::1]:9200".parse().unwrap());
    }

    #[test]
    fn a_bad_metrics_listen_address_is_refused_naming_metrics_listen() {
        for bad in ["localhost:9100", "127.0.0.1", "127.0.0.1:99999", ""] {
            let e = err(&format!("[metrics]\nlisten = {bad:?}\n"));
            assert!(e.starts_with("test.toml: metrics.listen: "), "{e}");
        }
        let e = err("[metrics]\n");
        assert!(
            e.starts_with("test.toml: metrics.listen: is required"),
            "{e}"
        );
        let e = err("[metrics]\nlisten = \"127.0.0.1:9100\"\npath = \"/m\"\n");
        assert!(e.contains("metrics.path: unknown field"), "{e}");
        let e = parse_env("", &[("ROLLCALL_METRICS__LISTEN", "nowhere")])
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("environment variable ROLLCALL_METRICS__LISTEN: metrics.listen: "),
            "{e}"
        );
    }

    #[test]
    fn an_out_of_range_datagram_size_is_refused() {
        let e = err("[cluster]\nmax_datagram_size = 100\n");
        assert!(e.contains("cluster.max_datagram_size"), "{e}");
    }
}
