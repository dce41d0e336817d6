//! [`AgentConfig`]: the agent's TOML file, with keys mirroring emqx.conf and
//! environment overrides in EMQX's style.
//!
//! ```toml
//! [node]
//! name = "rollcall@127.0.0.1"     # name@host; the host is an IP or a domain name
//! cookie = "a secret cookie"      # shared by every node of the cluster
//! data_dir = "data"               # holds the control socket (rollcall.sock)
//! # bind = "0.0.0.0"              # override the gossip bind address (IP or IP:port)
//! role = "core"                   # core | replicant (joins through discovery only)
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
//! `ROLLCALL_CLUSTER__STATIC__SEEDS` as a comma list, ...). The layers
//! (defaults, the file, the variables) are merged by figment. Unknown keys,
//! in the file or the environment, are errors that name the key and the file
//! or variable it came from. `rollcall agent --print-config` prints the
//! merged result.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::error::{Kind, OneOf};
use figment::providers::Serialized;
use figment::value::{Dict, Map};
use figment::{Figment, Metadata, Provider};
use serde::{de, Deserialize, Deserializer, Serialize, Serializer};

use crate::core::{Config, Cookie, NodeName, Profile, Role};
use crate::runtime::discovery::settings::{
    ip_and_port, DnsConfig, EtcdConfig, K8sConfig, KeyError, RawDns, RawEtcd, RawK8s,
};

/// The prefix of environment variables that override config keys.
pub const ENV_PREFIX: &str = "ROLLCALL_";

/// The node name used when none is configured.
pub const DEFAULT_NODE_NAME: &str = "rollcall@127.0.0.1";

/// What `--print-config` prints instead of the cookie.
pub const MASKED: &str = "********";

/// Every key's default: the layer under the file and the environment.
const DEFAULTS: &str = r#"
[node]
name = "rollcall@127.0.0.1"
cookie = "rollcallsecretcookie"
data_dir = "data"
role = "core"
[cluster]
name = "rollcall"
discovery_strategy = "manual"
proto_dist = "udp"
base_port = 4370
autoheal = true
network_evidence = true
lifeguard = true
autoclean = "24h"
profile = "lan"
expected_size = 16
max_datagram_size = 1400
discovery_interval = "30s"
discovery_interval_alone = "5s"
[cluster.static]
seeds = []
"#;

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
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
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
        self.serialize(f)
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
    /// `node.role`: `core` (the default) or `replicant`, as in EMQX 5. A
    /// replicant joins through automatic discovery only, and autoheal never
    /// lets a side without core nodes win.
    pub role: Role,
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
    /// The configuration could not be written out as TOML.
    #[error("cannot print the configuration: {0}")]
    Print(String),
}

impl AgentConfig {
    /// The defaults for a node named `name` (manual discovery, LAN profile,
    /// the default cookie, `data_dir = "data"`).
    pub fn new(name: NodeName) -> Self {
        Self {
            name,
            ..Self::default()
        }
    }

    /// Reads `path` (or only defaults when `None`), then applies the
    /// `ROLLCALL_*` variables of this process's environment.
    pub fn load(path: Option<&Path>) -> Result<Self, AgentConfigError> {
        let (text, origin) = read(path)?;
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
        resolve(text, origin, env).map(|(_, config)| config)
    }

    /// What `rollcall agent --print-config` prints: the configuration
    /// [`AgentConfig::load`] runs with, as TOML, every key (defaults
    /// included) after the file and the environment, with the cookie
    /// [`MASKED`]. A configuration `load` refuses is refused alike.
    pub fn load_printable(path: Option<&Path>) -> Result<String, AgentConfigError> {
        let (text, origin) = read(path)?;
        Self::printable(&text, &origin, std::env::vars())
    }

    /// [`AgentConfig::load_printable`] for TOML `text` (named `origin`) and
    /// the overrides among `env`, as [`AgentConfig::from_toml`] takes them.
    pub fn printable(
        text: &str,
        origin: &str,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<String, AgentConfigError> {
        let (mut settings, _) = resolve(text, origin, env)?;
        settings.node.cookie = MASKED.to_owned();
        toml::to_string(&settings).map_err(|e| AgentConfigError::Print(e.to_string()))
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
        config.role = self.role;
        config.rediscovery = crate::core::RediscoveryConfig {
            alone: self.discovery_interval_alone,
            in_cluster: self.discovery_interval,
        };
        config
    }
}

impl Default for AgentConfig {
    fn default() -> Self {
        Self::from_toml("", "<defaults>", std::iter::empty()).expect("the defaults are valid")
    }
}

/// The text of the file at `path` (none: empty) and its name for errors.
fn read(path: Option<&Path>) -> Result<(String, String), AgentConfigError> {
    let Some(path) = path else {
        return Ok((String::new(), "<defaults>".to_owned()));
    };
    match std::fs::read_to_string(path) {
        Ok(text) => Ok((text, path.display().to_string())),
        Err(error) => Err(AgentConfigError::Read {
            path: path.to_owned(),
            error,
        }),
    }
}

/// Merges the layers, each over the one before: [`DEFAULTS`], the TOML
/// `text`, then every `ROLLCALL_SECTION__KEY` variable among `env` (keys
/// lower-cased, `__` between segments, `cluster.static.seeds` a comma
/// list). Values stay strings: figment reads numbers and booleans out of
/// them where a key wants one. Returns the merged file and its checked
/// configuration; errors name the file or the variable a key came from.
fn resolve(
    text: &str,
    origin: &str,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<(Settings, AgentConfig), AgentConfigError> {
    let file = |text| {
        Ok(Layer(
            origin.to_owned(),
            Serialized::defaults(table(text, origin)?),
        ))
    };
    let mut figment = Figment::from(file(DEFAULTS)?).merge(file(text)?);
    for (var, value) in env {
        let Some(key) = var.strip_prefix(ENV_PREFIX).filter(|k| k.contains("__")) else {
            continue;
        };
        let key = key.to_ascii_lowercase().replace("__", ".");
        let value = match key.as_str() {
            "cluster.static.seeds" => toml::Value::Array(
                value
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(toml::Value::from)
                    .collect(),
            ),
            _ => toml::Value::String(value),
        };
        let layer = Serialized::default(&key, value);
        figment = figment.merge(Layer(format!("environment variable {var}"), layer));
    }
    let settings: Settings = figment.extract_lossy().map_err(|e| key_error(e, origin))?;
    let config = settings
        .check()
        .map_err(|(key, message)| AgentConfigError::Key {
            origin: figment
                .find_metadata(&key)
                .map_or_else(|| origin.to_owned(), |m| m.name.to_string()),
            key,
            message,
        })?;
    Ok((settings, config))
}

/// One layer of the configuration, named as errors name where a value came
/// from: the file, or one environment variable.
struct Layer<T>(String, Serialized<T>);

impl<T: Serialize> Provider for Layer<T> {
    fn metadata(&self) -> Metadata {
        Metadata::named(self.0.clone())
    }

    fn data(&self) -> Result<Map<figment::Profile, Dict>, figment::Error> {
        self.1.data()
    }
}

/// `text` as a TOML table; a syntax error names `origin`, line and column.
fn table(text: &str, origin: &str) -> Result<toml::Table, AgentConfigError> {
    toml::from_str(text).map_err(|e| {
        let before = &text[..e.span().map_or(0, |s| s.start).min(text.len())];
        AgentConfigError::Syntax {
            origin: origin.to_owned(),
            line: before.matches('\n').count() + 1,
            column: before.chars().rev().take_while(|c| *c != '\n').count() + 1,
            message: e.message().split_whitespace().collect::<Vec<_>>().join(" "),
        }
    })
}

/// A figment error as the agent reports it: the layer, the key (sequence
/// elements as `seeds[1]`) and serde's wording.
fn key_error(e: figment::Error, origin: &str) -> AgentConfigError {
    let key = e.path.iter().fold(String::new(), |key, part| {
        match (part.parse::<usize>(), key.is_empty()) {
            (Ok(_), _) => format!("{key}[{part}]"),
            (Err(_), true) => part.clone(),
            (Err(_), false) => format!("{key}.{part}"),
        }
    });
    let message = match &e.kind {
        Kind::UnknownField(f, valid) => format!("unknown field `{f}`, expected {}", OneOf(valid)),
        Kind::UnknownVariant(v, valid) => {
            format!("unknown variant `{v}`, expected {}", OneOf(valid))
        }
        kind => kind.to_string(),
    };
    AgentConfigError::Key {
        origin: e
            .metadata
            .map_or_else(|| origin.to_owned(), |m| m.name.into_owned()),
        key,
        message,
    }
}

/// The file's layout, as figment extracts it from the layers.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    node: Node,
    cluster: Cluster,
    metrics: Option<Metrics>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Node {
    name: NodeName,
    cookie: String,
    data_dir: PathBuf,
    bind: Option<String>,
    role: Role,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Cluster {
    name: String,
    discovery_strategy: Strategy,
    proto_dist: ProtoDist,
    base_port: u16,
    autoheal: bool,
    network_evidence: bool,
    lifeguard: bool,
    #[serde(with = "off_or_duration")]
    autoclean: Option<Duration>,
    #[serde(with = "ProfileName")]
    profile: Profile,
    expected_size: u32,
    max_datagram_size: usize,
    #[serde(with = "humantime_serde")]
    discovery_interval: Duration,
    #[serde(with = "humantime_serde")]
    discovery_interval_alone: Duration,
    #[serde(rename = "static")]
    static_: Static,
    #[serde(default)]
    dns: RawDns,
    #[serde(default)]
    etcd: RawEtcd,
    #[serde(default, alias = "K8s")]
    k8s: RawK8s,
    #[cfg(feature = "quic")]
    #[serde(default)]
    quic: crate::runtime::transport::QuicCertConfig,
    /// Without QUIC in the build, a `[cluster.quic]` table is refused.
    #[cfg(not(feature = "quic"))]
    quic: Option<toml::Table>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Static {
    seeds: Vec<NodeName>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Metrics {
    listen: Option<String>,
}

/// `cluster.discovery_strategy`, before its table is checked.
#[derive(Clone, Copy, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Strategy {
    Manual,
    Static,
    Dns,
    Etcd,
    #[serde(alias = "K8s", alias = "K8S")]
    K8s,
}

/// How `cluster.profile` spells a [`Profile`].
#[derive(Serialize, Deserialize)]
#[serde(remote = "Profile", rename_all = "lowercase")]
enum ProfileName {
    Lan,
    Wan,
    Local,
}

/// `cluster.autoclean`: a duration, or `"off"` for none.
mod off_or_duration {
    use super::*;

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => humantime_serde::serialize(d, s),
            None => s.serialize_str("off"),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        let text = String::deserialize(d)?;
        match text.trim() {
            "off" => Ok(None),
            t => humantime::parse_duration(t).map(Some).map_err(|e| {
                de::Error::custom(format!("invalid duration {text:?} (or \"off\"): {e}"))
            }),
        }
    }
}

impl Settings {
    /// The checks serde cannot make.
    fn check(&self) -> Result<AgentConfig, KeyError> {
        let err = |key: &str, message: String| (key.to_owned(), message);
        let (node, cluster) = (&self.node, &self.cluster);
        let metrics = self.metrics.as_ref().map(Metrics::check).transpose()?;
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
            Some(text) => Some(ip_and_port(text, port).ok_or_else(|| {
                err(
                    "node.bind",
                    format!("{text:?} is not an IP address or an IP:port"),
                )
            })?),
        };
        let seeds = &cluster.static_.seeds;
        let discovery =
            match cluster.discovery_strategy {
                Strategy::Manual => DiscoveryStrategy::Manual,
                Strategy::Static if seeds.is_empty() => return Err(err(
                    "cluster.static.seeds",
                    "at least one seed is required when cluster.discovery_strategy is \"static\""
                        .into(),
                )),
                Strategy::Static => DiscoveryStrategy::Static {
                    seeds: seeds.clone(),
                },
                // Only the chosen strategy's table is checked, as EMQX does.
                Strategy::Dns => DiscoveryStrategy::Dns(cluster.dns.clone().validate()?),
                Strategy::Etcd => DiscoveryStrategy::Etcd(cluster.etcd.clone().validate()?),
                Strategy::K8s => DiscoveryStrategy::K8s(cluster.k8s.clone().validate()?),
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
            name: node.name.clone(),
            cookie: Cookie::new(node.cookie.as_str()),
            data_dir: node.data_dir.clone(),
            bind,
            role: node.role,
            cluster_name: cluster.name.clone(),
            discovery,
            proto_dist: cluster.proto_dist,
            #[cfg(feature = "quic")]
            quic: cluster.quic.clone(),
            base_port: cluster.base_port,
            autoheal: cluster.autoheal,
            network_evidence: cluster.network_evidence,
            lifeguard: cluster.lifeguard,
            autoclean: cluster.autoclean,
            profile: cluster.profile,
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

impl Metrics {
    /// `[metrics]`, checked.
    fn check(&self) -> Result<MetricsConfig, KeyError> {
        let err = |message: String| ("metrics.listen".to_owned(), message);
        let text = self.listen.as_deref().ok_or_else(|| {
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
    fn node_role_defaults_to_core_and_reaches_the_core_config() {
        assert_eq!(parse("").unwrap().core_config().role, Role::Core);
        let file = parse("[node]\nrole = \"replicant\"\n").unwrap();
        assert_eq!(file.core_config().role, Role::Replicant);
        let env = parse_env("", &[("ROLLCALL_NODE__ROLE", "replicant")]).unwrap();
        assert_eq!(env.role, Role::Replicant);
        let bad = err("[node]\nrole = \"leader\"\n");
        assert!(
            bad.contains("node.role") && bad.contains("replicant"),
            "{bad}"
        );
    }

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
    fn values_stay_strings_where_a_key_wants_one_and_numbers_or_booleans_may_be_strings() {
        let c = parse_env(
            "[cluster]\nbase_port = \"5000\"\nautoheal = \"false\"\n",
            &[
                ("ROLLCALL_NODE__COOKIE", "123456"),
                ("ROLLCALL_CLUSTER__NAME", "true"),
                ("ROLLCALL_CLUSTER__EXPECTED_SIZE", "40"),
                ("ROLLCALL_CLUSTER__LIFEGUARD", "false"),
            ],
        )
        .unwrap();
        assert_eq!(c.cookie, Cookie::new("123456"));
        assert_eq!(c.cluster_name, "true");
        assert_eq!((c.base_port, c.expected_size), (5000, 40));
        assert!(!c.autoheal && !c.lifeguard);
        let e = parse_env("", &[("ROLLCALL_CLUSTER__BASE_PORT", "many")])
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("environment variable ROLLCALL_CLUSTER__BASE_PORT: cluster.base_port: "),
            "{e}"
        );
    }

    #[test]
    fn the_defaults_are_the_cores() {
        let c = parse("").unwrap();
        assert_eq!(c.base_port, crate::core::name::DEFAULT_BASE_PORT);
        assert_eq!(c.autoclean, Some(crate::core::config::DEFAULT_AUTOCLEAN));
        assert!(c.cookie.is_default());
    }

    #[test]
    fn the_printed_configuration_has_every_key_and_the_overrides_but_not_the_cookie() {
        let env = [("ROLLCALL_CLUSTER__BASE_PORT", "5000")].map(|(k, v)| (k.into(), v.into()));
        let text = AgentConfig::printable(FULL, "test.toml", env).unwrap();
        assert!(!text.contains("a secret cookie"), "{text}");
        assert!(text.contains(&format!("cookie = \"{MASKED}\"")), "{text}");
        for line in [
            "base_port = 5000",
            "discovery_interval = \"30s\"",
            "autoclean = \"1day\"",
            "seeds = [\"rollcall@127.0.0.1\", \"rollcall1@127.0.0.1\"]",
        ] {
            assert!(text.contains(line), "{line} in {text}");
        }
        // What is printed reads back as itself.
        let again = AgentConfig::printable(&text, "printed.toml", std::iter::empty()).unwrap();
        assert_eq!(again, text);
        let off = AgentConfig::printable("[cluster]\nautoclean = \"off\"\n", "t", []).unwrap();
        assert!(off.contains("autoclean = \"off\""), "{off}");
        assert!(AgentConfig::printable("[cluster]\nnope = 1\n", "t", []).is_err());
    }

    #[test]
    fn an_out_of_range_datagram_size_is_refused() {
        let e = err("[cluster]\nmax_datagram_size = 100\n");
        assert!(e.contains("cluster.max_datagram_size"), "{e}");
    }
}
