//! Protocol configuration: the cluster, its cookie and the SWIM timings.
//!
//! Three profiles, derived from foca's own (which follow memberlist's):
//!
//! | profile | probe period | probe rtt | gossip        | suspicion        | use |
//! |---------|--------------|-----------|---------------|------------------|-----|
//! | LAN     | 1 s          | 500 ms    | 200 ms to 3   | 4 x log10(N) s   | one data centre |
//! | WAN     | 5 s          | 3 s       | 500 ms to 4   | 6 x log10(N) x 5 s | across regions |
//! | local   | 1 s          | 200 ms    | 100 ms to 3   | 3 x log10(N) s   | one host, tests |
//!
//! (`log10(N)` is at least 1.) Every field of [`foca::Config`] is reachable
//! through [`Config::swim`] for tuning; [`Config::validate`] checks the limits
//! documented on each field.

use std::fmt;
use std::num::{NonZeroU32, NonZeroU8, NonZeroUsize};
use std::time::Duration;

use super::role::Role;
use super::wire;

/// The cookie every node of a cluster shares. Never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Cookie(Vec<u8>);

/// The cookie a node uses when none is configured. It works, but anyone who
/// knows rollcall knows it: the agent logs a warning when it is in use.
pub const DEFAULT_COOKIE: &str = "rollcallsecretcookie";

impl Cookie {
    /// Wraps a secret.
    pub fn new(secret: impl Into<Vec<u8>>) -> Self {
        Self(secret.into())
    }

    /// The secret's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Whether this is [`DEFAULT_COOKIE`].
    pub fn is_default(&self) -> bool {
        self.0 == DEFAULT_COOKIE.as_bytes()
    }
}

impl Default for Cookie {
    fn default() -> Self {
        Self::new(DEFAULT_COOKIE)
    }
}

impl fmt::Debug for Cookie {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Cookie(<redacted>)")
    }
}

/// A named set of timings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Profile {
    /// One data centre (foca's `new_lan`).
    Lan,
    /// Across regions (foca's `new_wan`).
    Wan,
    /// One host: faster probes and gossip than LAN, for tests and development.
    Local,
}

/// Why a [`Config`] cannot be used. State is unchanged: nothing was built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// The cluster name is empty.
    #[error("cluster name must not be empty")]
    EmptyClusterName,
    /// The cookie is empty.
    #[error("cookie must not be empty")]
    EmptyCookie,
    /// `max_datagram_size` leaves no room for a SWIM packet.
    #[error("max_datagram_size {0} is too small (at least {min} bytes)", min = MIN_DATAGRAM_SIZE)]
    DatagramTooSmall(usize),
    /// `max_datagram_size` is larger than a UDP payload can be.
    #[error("max_datagram_size {0} is larger than 65507 bytes")]
    DatagramTooLarge(usize),
    /// probe_rtt must be shorter than probe_period, both non-zero.
    #[error(
        "swim.probe_rtt ({rtt:?}) must be non-zero and shorter than swim.probe_period ({period:?})"
    )]
    ProbeTimings {
        /// The probe period.
        period: Duration,
        /// The probe round-trip time.
        rtt: Duration,
    },
    /// The sync intervals are zero or out of order.
    #[error(
        "sync.min_interval ({min:?}) must be non-zero and at most sync.max_interval ({max:?})"
    )]
    SyncIntervals {
        /// The minimum interval.
        min: Duration,
        /// The maximum interval.
        max: Duration,
    },
    /// autoclean is zero.
    #[error("autoclean must be longer than zero (or off)")]
    ZeroAutoclean,
    /// suspect_to_down_after is zero.
    #[error("swim.suspect_to_down_after must not be zero")]
    ZeroSuspicion,
    /// evidence_timeout is zero or not shorter than the suspicion timeout.
    #[error(
        "evidence_timeout ({evidence:?}) must be non-zero and shorter than swim.suspect_to_down_after ({suspicion:?})"
    )]
    EvidenceTimeout {
        /// The timeout after network evidence.
        evidence: Duration,
        /// The ordinary suspicion timeout.
        suspicion: Duration,
    },
    /// A rediscovery interval is zero.
    #[error(
        "rediscovery intervals must be non-zero (alone {alone:?}, in a cluster {in_cluster:?})"
    )]
    RediscoveryIntervals {
        /// The interval while alone.
        alone: Duration,
        /// The interval while in a cluster.
        in_cluster: Duration,
    },
}

/// The smallest datagram that fits the envelope and a useful SWIM packet.
pub const MIN_DATAGRAM_SIZE: usize = 512;

/// How often a node compares its view with another's (full-state sync).
///
/// The interval adapts: after a round that found the views different it drops
/// to `min_interval`; after a round that found them equal it doubles, up to
/// `max_interval`. Each interval is jittered by +/-25%. An idle, converged
/// cluster costs one small datagram per node per `max_interval` (about 100
/// bytes), whatever its size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SyncConfig {
    /// The shortest interval, while views differ. Non-zero; 1 s by default.
    pub min_interval: Duration,
    /// The longest interval, while views agree. At least `min_interval`;
    /// 10 s by default.
    pub max_interval: Duration,
}

impl Default for SyncConfig {
    fn default() -> Self {
        Self {
            min_interval: Duration::from_secs(1),
            max_interval: Duration::from_secs(10),
        }
    }
}

/// When a node asks its discovery strategy for seeds (see
/// [`Node::poll_discover`](crate::core::Node::poll_discover)): at start, then
/// every `alone` while it has no members and every `in_cluster` while it has
/// some, and at once when it finds itself alone again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RediscoveryConfig {
    /// The interval while the node has no members. Non-zero; 5 s by default.
    pub alone: Duration,
    /// The interval while it has members. Non-zero; 30 s by default.
    pub in_cluster: Duration,
}

impl Default for RediscoveryConfig {
    fn default() -> Self {
        Self {
            alone: Duration::from_secs(5),
            in_cluster: Duration::from_secs(30),
        }
    }
}

impl RediscoveryConfig {
    /// The wait before the next request, given how many members the node has.
    pub fn next_wait(&self, members: usize) -> Duration {
        if members == 0 {
            self.alone
        } else {
            self.in_cluster
        }
    }
}

/// Everything the core needs to run one node.
#[derive(Clone, Debug)]
pub struct Config {
    /// The cluster's name, bound into every datagram: nodes of clusters with
    /// other names drop each other's datagrams unopened. Non-empty.
    pub cluster_name: String,
    /// The shared secret; see [`Cookie`]. Non-empty.
    pub cookie: Cookie,
    /// The largest datagram sent or accepted, envelope included. Between
    /// [`MIN_DATAGRAM_SIZE`] and 65507; 1400 stays under a 1500-byte Ethernet
    /// MTU with room for IPv6 and tunnel headers. foca's `max_packet_size` is
    /// set to this minus [`wire::OVERHEAD`] by [`Config::foca`].
    pub max_datagram_size: usize,
    /// The profile the timings were derived from (informational).
    pub profile: Profile,
    /// SWIM timings and limits, as foca documents them. `max_packet_size` is
    /// overwritten from `max_datagram_size`.
    pub swim: foca::Config,
    /// Full-state sync; `None` turns it off (plain foca gossip only).
    pub sync: Option<SyncConfig>,
    /// How long a member stays down before every node forgets it (and how
    /// long tombstones of departed nodes are kept). `None` keeps them
    /// forever. Default 24 h, as EMQX's `cluster.autoclean`.
    pub autoclean: Option<Duration>,
    /// Whether the sides of a healed partition merge by themselves (the
    /// smaller side rejoins the larger). Default on, as EMQX's
    /// `cluster.autoheal`. Off, sides stay apart until a manual join.
    pub autoheal: bool,
    /// Whether evidence from the network counts: a member whose host
    /// answers with "port unreachable" (its process is gone) is suspected at
    /// once, on [`evidence_timeout`](Self::evidence_timeout) instead of the
    /// suspicion timeout. Default on. See ALGORITHM.md, "Evidence from the
    /// network".
    pub network_evidence: bool,
    /// Whether Lifeguard runs on top of SWIM (Dadgar et al., DSN 2018):
    /// a suspect is told it is suspected, so it refutes at once (the buddy
    /// system); a suspicion runs up to six times the suspicion timeout
    /// until other members confirm it ([`dynamic_suspicion`]); a node
    /// whose own probes fail waits longer between probes and for acks
    /// ([`health`]). Default on. Off, suspicions are plain SWIM: gossiped
    /// only, on the fixed timeout. See ALGORITHM.md, "Lifeguard".
    ///
    /// [`dynamic_suspicion`]: crate::core::dynamic_suspicion
    /// [`health`]: crate::core::health
    pub lifeguard: bool,
    /// How long a member suspected on network evidence has to refute before
    /// it is declared down: long enough for a live member (a forged
    /// message) to hear of it and answer. Non-zero, shorter than
    /// `swim.suspect_to_down_after`; twice the probe round-trip time by
    /// default (1 s LAN, 400 ms local, 6 s WAN).
    pub evidence_timeout: Duration,
    /// When the node asks discovery for seeds; see [`RediscoveryConfig`].
    pub rediscovery: RediscoveryConfig,
    /// The node's role, as EMQX 5 has them: [`Role::Core`] (the default)
    /// or [`Role::Replicant`]. It travels with the node's identity; a
    /// replicant refuses an explicit `Join` (it joins through discovery
    /// only), and autoheal counts core nodes first. See [`Role`].
    pub role: Role,
}

/// The default `autoclean`: 24 hours.
pub const DEFAULT_AUTOCLEAN: Duration = Duration::from_secs(24 * 3600);

impl Config {
    /// The LAN profile for a cluster of about `cluster_size` nodes.
    pub fn lan(cluster_size: u32) -> Self {
        Self::from_swim(Profile::Lan, foca::Config::new_lan(size(cluster_size)))
    }

    /// The WAN profile for a cluster of about `cluster_size` nodes.
    pub fn wan(cluster_size: u32) -> Self {
        Self::from_swim(Profile::Wan, foca::Config::new_wan(size(cluster_size)))
    }

    /// The local (one host) profile for a cluster of about `cluster_size` nodes.
    pub fn local(cluster_size: u32) -> Self {
        let mut swim = foca::Config::new_lan(size(cluster_size));
        swim.probe_rtt = Duration::from_millis(200);
        swim.suspect_to_down_after = suspicion(cluster_size, swim.probe_period, 3.0);
        if let Some(g) = swim.periodic_gossip.as_mut() {
            g.frequency = Duration::from_millis(100);
        }
        Self::from_swim(Profile::Local, swim)
    }

    /// The named profile for about `cluster_size` nodes.
    pub fn profile(profile: Profile, cluster_size: u32) -> Self {
        match profile {
            Profile::Lan => Self::lan(cluster_size),
            Profile::Wan => Self::wan(cluster_size),
            Profile::Local => Self::local(cluster_size),
        }
    }

    fn from_swim(profile: Profile, swim: foca::Config) -> Self {
        let evidence_timeout = (swim.probe_rtt * 2).min(swim.suspect_to_down_after / 2);
        Self {
            network_evidence: true,
            lifeguard: true,
            evidence_timeout,
            cluster_name: "rollcall".to_owned(),
            cookie: Cookie::default(),
            max_datagram_size: 1400,
            profile,
            swim,
            sync: Some(SyncConfig::default()),
            autoclean: Some(DEFAULT_AUTOCLEAN),
            autoheal: true,
            rediscovery: RediscoveryConfig::default(),
            role: Role::Core,
        }
    }

    /// Sets the cluster name and cookie.
    pub fn with_cluster(mut self, name: impl Into<String>, cookie: Cookie) -> Self {
        self.cluster_name = name.into();
        self.cookie = cookie;
        self
    }

    /// Checks the limits documented on each field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.cluster_name.is_empty() {
            return Err(ConfigError::EmptyClusterName);
        }
        if self.cookie.as_bytes().is_empty() {
            return Err(ConfigError::EmptyCookie);
        }
        if self.max_datagram_size < MIN_DATAGRAM_SIZE {
            return Err(ConfigError::DatagramTooSmall(self.max_datagram_size));
        }
        if self.max_datagram_size > 65507 {
            return Err(ConfigError::DatagramTooLarge(self.max_datagram_size));
        }
        let (period, rtt) = (self.swim.probe_period, self.swim.probe_rtt);
        if rtt.is_zero() || rtt >= period {
            return Err(ConfigError::ProbeTimings { period, rtt });
        }
        if self.swim.suspect_to_down_after.is_zero() {
            return Err(ConfigError::ZeroSuspicion);
        }
        if self.evidence_timeout.is_zero()
            || self.evidence_timeout >= self.swim.suspect_to_down_after
        {
            return Err(ConfigError::EvidenceTimeout {
                evidence: self.evidence_timeout,
                suspicion: self.swim.suspect_to_down_after,
            });
        }
        if self.autoclean.is_some_and(|d| d.is_zero()) {
            return Err(ConfigError::ZeroAutoclean);
        }
        if let Some(sync) = &self.sync {
            if sync.min_interval.is_zero() || sync.max_interval < sync.min_interval {
                return Err(ConfigError::SyncIntervals {
                    min: sync.min_interval,
                    max: sync.max_interval,
                });
            }
        }
        let r = self.rediscovery;
        if r.alone.is_zero() || r.in_cluster.is_zero() {
            return Err(ConfigError::RediscoveryIntervals {
                alone: r.alone,
                in_cluster: r.in_cluster,
            });
        }
        Ok(())
    }

    /// The foca configuration this config implies.
    ///
    /// rollcall takes three decisions away from foca: it forgets down
    /// members itself (autoclean, so `remove_down_after` is off), it never
    /// lets a member that holds us down tell us so directly
    /// (`notify_down_members` is off: only our own side's gossip, or the
    /// autoheal decision, makes a node renew), and without autoheal it does
    /// not announce to members held down.
    pub fn foca(&self) -> foca::Config {
        let mut swim = self.swim.clone();
        swim.remove_down_after = None;
        swim.notify_down_members = false;
        if !self.autoheal {
            swim.periodic_announce_to_down_members = None;
        }
        swim.max_packet_size = NonZeroUsize::new(self.max_datagram_size - wire::OVERHEAD)
            .expect("validate() keeps max_datagram_size above the envelope overhead");
        swim
    }

    /// An upper bound on how long after a crash every live node has marked
    /// the crashed node down, in the absence of loss: one probe period for
    /// some member to probe it, the suspicion timeout, and the time a
    /// `Down` update needs to reach everyone by gossip
    /// (`max_transmissions` rounds of periodic gossip).
    pub fn detection_bound(&self) -> Duration {
        let gossip = self
            .swim
            .periodic_gossip
            .as_ref()
            .map(|g| g.frequency)
            .unwrap_or(self.swim.probe_period);
        let n = self.swim.probe_period.as_secs_f64() // until a prober picks it
            + self.swim.probe_period.as_secs_f64() // direct and indirect probes
            + self.swim.suspect_to_down_after.as_secs_f64()
            + gossip.as_secs_f64() * f64::from(self.swim.max_transmissions.get());
        Duration::from_secs_f64(n)
    }
}

fn size(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n.max(1)).expect("max(1) is non-zero")
}

fn suspicion(cluster_size: u32, period: Duration, multiplier: f64) -> Duration {
    let secs = f64::max(1.0, f64::from(cluster_size.max(1)).log10()) * multiplier;
    Duration::from_secs_f64(secs * period.as_secs_f64())
}

/// foca's retransmit count for a cluster size, exposed for reports.
pub fn max_transmissions(cluster_size: u32) -> NonZeroU8 {
    foca::Config::new_lan(size(cluster_size)).max_transmissions
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_profile_validates_for_small_and_large_clusters() {
        for n in [0, 1, 5, 1000, 100_000] {
            for p in [Profile::Lan, Profile::Wan, Profile::Local] {
                Config::profile(p, n).validate().unwrap();
            }
        }
    }

    #[test]
    fn the_local_profile_probes_faster_than_lan() {
        let (l, lan) = (Config::local(10), Config::lan(10));
        assert!(l.swim.probe_rtt < lan.swim.probe_rtt);
        assert!(l.swim.suspect_to_down_after < lan.swim.suspect_to_down_after);
    }

    #[test]
    fn foca_gets_the_datagram_size_minus_the_envelope() {
        let c = Config::lan(10);
        assert_eq!(c.foca().max_packet_size.get(), 1400 - wire::OVERHEAD);
    }

    #[test]
    fn out_of_range_fields_are_rejected_with_the_field_named() {
        let mut c = Config::lan(10);
        c.max_datagram_size = 100;
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("max_datagram_size"));
        let mut c = Config::lan(10);
        c.swim.probe_rtt = c.swim.probe_period;
        assert!(c.validate().unwrap_err().to_string().contains("probe_rtt"));
        let c = Config::lan(10).with_cluster("", Cookie::new("x"));
        assert_eq!(c.validate(), Err(ConfigError::EmptyClusterName));
        let c = Config::lan(10).with_cluster("c", Cookie::new(""));
        assert_eq!(c.validate(), Err(ConfigError::EmptyCookie));
    }

    #[test]
    fn a_node_is_a_core_node_unless_configured_otherwise() {
        for p in [Profile::Lan, Profile::Wan, Profile::Local] {
            assert_eq!(Config::profile(p, 3).role, Role::Core);
        }
    }

    #[test]
    fn the_cookie_never_shows_in_debug_output() {
        let c = Config::lan(3).with_cluster("c", Cookie::new("hunter2"));
        assert!(!format!("{c:?}").contains("hunter2"));
        assert!(Cookie::default().is_default());
    }
}
