//! The simulated network: per-link latency and jitter, loss, duplication,
//! and partitions (symmetric or one-way). Reordering falls out of jitter.
//!
//! The network only decides what happens to each datagram (dropped, or
//! delivered at one or two instants); the [`World`](crate::world::World)
//! queues the deliveries. Every decision about a datagram draws from its
//! sender's own RNG stream of the run's seed, in the order that sender
//! sends: a seed replays the network, and the decisions do not depend on
//! the order in which the world handles different nodes (so nodes can be
//! handled in parallel, see [`crate::parallel`]).

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use rollcall::core::{Config, Profile, Time};
use serde::{Deserialize, Serialize};

use crate::rng::{derive, streams, SimRng};
use crate::tuning::Tuning;

/// A network and protocol profile: the link timings, and the matching
/// rollcall [`Config`] profile.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum NetProfile {
    /// One data centre: ~0.25 ms links (0.125–0.375 ms per link), 0.1 ms jitter; LAN timings.
    #[default]
    Lan,
    /// Across regions: ~40 ms links (10–80 ms per link), 10 ms jitter; WAN timings.
    Wan,
    /// One host: ~50 µs links, 20 µs jitter; the local (fast) timings.
    Local,
}

impl NetProfile {
    /// Every profile, for help texts.
    pub const ALL: [NetProfile; 3] = [NetProfile::Lan, NetProfile::Wan, NetProfile::Local];

    /// The rollcall configuration for a cluster of `nodes` under this
    /// profile, with the default [`Tuning`] (sync on, 24 h autoclean).
    pub fn config(self, nodes: u32) -> Config {
        self.configure(nodes, &Tuning::default())
    }

    /// The rollcall configuration for a cluster of `nodes` under this
    /// profile with `tuning` applied: the one place a run's config is built.
    pub fn configure(self, nodes: u32, tuning: &Tuning) -> Config {
        let p = match self {
            NetProfile::Lan => Profile::Lan,
            NetProfile::Wan => Profile::Wan,
            NetProfile::Local => Profile::Local,
        };
        let mut config = Config::profile(p, nodes);
        if !tuning.sync {
            config.sync = None;
        }
        if let Some(d) = tuning.autoclean {
            config.autoclean = Some(d);
        }
        config.network_evidence = tuning.network_evidence;
        config.lifeguard = tuning.lifeguard;
        config.autoheal = tuning.autoheal;
        config
    }

    /// The link timings of this profile.
    pub fn links(self) -> LinkTimings {
        match self {
            NetProfile::Lan => LinkTimings {
                latency: Duration::from_micros(250),
                spread: (0.5, 1.5),
                jitter: Duration::from_micros(100),
            },
            NetProfile::Wan => LinkTimings {
                latency: Duration::from_millis(40),
                spread: (0.25, 2.0),
                jitter: Duration::from_millis(10),
            },
            NetProfile::Local => LinkTimings {
                latency: Duration::from_micros(50),
                spread: (0.8, 1.2),
                jitter: Duration::from_micros(20),
            },
        }
    }
}

impl fmt::Display for NetProfile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NetProfile::Lan => "lan",
            NetProfile::Wan => "wan",
            NetProfile::Local => "local",
        })
    }
}

/// An unknown profile name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown profile {0:?} (expected lan, wan or local)")]
pub struct UnknownProfile(pub String);

impl FromStr for NetProfile {
    type Err = UnknownProfile;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "lan" => Ok(NetProfile::Lan),
            "wan" => Ok(NetProfile::Wan),
            "local" => Ok(NetProfile::Local),
            other => Err(UnknownProfile(other.to_owned())),
        }
    }
}

/// How long datagrams take on the links of a profile.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LinkTimings {
    /// The typical one-way latency.
    pub latency: Duration,
    /// Each directed link's base latency is `latency` times a factor drawn
    /// (once per link, from the seed) uniformly from this range.
    pub spread: (f64, f64),
    /// Each datagram adds a uniform delay in `[0, jitter)`: datagrams on one
    /// link can overtake each other.
    pub jitter: Duration,
}

impl LinkTimings {
    /// Every link exactly `latency`, without spread or jitter: datagrams
    /// on a link arrive in order, at known instants.
    pub fn fixed(latency: Duration) -> Self {
        Self {
            latency,
            spread: (1.0, 1.0),
            jitter: Duration::ZERO,
        }
    }
}

/// What the network did with one datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fate {
    /// Delivered once, at this instant.
    Once(Time),
    /// Delivered twice (duplicated), at these instants.
    Twice(Time, Time),
    /// Cut by a partition.
    Partitioned,
    /// Lost at random.
    Lost,
}

/// Counters of the network's decisions.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct NetStats {
    /// Datagrams handed to the network.
    pub sent: u64,
    /// Copies scheduled for delivery (duplicates included).
    pub delivered: u64,
    /// Datagrams lost at random.
    pub lost: u64,
    /// Datagrams cut by a partition.
    pub partitioned: u64,
    /// Extra copies made by duplication.
    pub duplicated: u64,
    /// Datagrams addressed to no simulated node.
    pub unroutable: u64,
}

/// The network between `n` nodes.
#[derive(Debug)]
pub struct Network {
    links: LinkTimings,
    link_seed: u64,
    /// Each sending node's stream of decisions (loss, jitter, duplication).
    pub(crate) rngs: Vec<SimRng>,
    loss: f64,
    /// Loss of each node's outbound datagrams, on top of `loss`.
    outbound_loss: Vec<f64>,
    duplicate: f64,
    /// Group of each node; all zero when there is no partition.
    group: Vec<u16>,
    /// `blocked[from * groups + to]`: datagrams from group `from` to `to` are cut.
    blocked: Vec<bool>,
    groups: usize,
    /// The last partition lifted, if any, and when.
    lifted: Option<(Cut, Time)>,
    stats: NetStats,
}

/// A partition as it stood.
#[derive(Debug)]
struct Cut {
    group: Vec<u16>,
    blocked: Vec<bool>,
    groups: usize,
}

impl Network {
    /// A healthy network of `nodes` nodes with these link timings.
    pub fn new(seed: u64, nodes: usize, links: LinkTimings) -> Self {
        Self {
            links,
            link_seed: derive(seed, streams::LINK, 0),
            rngs: (0..nodes)
                .map(|i| {
                    SimRng::new(
                        derive(seed, streams::NETWORK, i as u64 + 1),
                        streams::NETWORK,
                    )
                })
                .collect(),
            loss: 0.0,
            outbound_loss: vec![0.0; nodes],
            duplicate: 0.0,
            group: vec![0; nodes],
            blocked: vec![false],
            groups: 1,
            lifted: None,
            stats: NetStats::default(),
        }
    }

    /// Sets the probability that a datagram is lost (clamped to `[0, 1]`).
    pub fn set_loss(&mut self, p: f64) {
        self.loss = p.clamp(0.0, 1.0);
    }

    /// Sets the probability that a datagram node `node` sends is lost, on
    /// top of the loss of every link (clamped to `[0, 1]`).
    pub fn set_outbound_loss(&mut self, node: u32, p: f64) {
        if let Some(l) = self.outbound_loss.get_mut(node as usize) {
            *l = p.clamp(0.0, 1.0);
        }
    }

    /// Sets the probability that a datagram is delivered twice (clamped to `[0, 1]`).
    pub fn set_duplicate(&mut self, p: f64) {
        self.duplicate = p.clamp(0.0, 1.0);
    }

    /// The current loss probability.
    pub fn loss(&self) -> f64 {
        self.loss
    }

    /// Splits the nodes into groups (`group[i]` is node `i`'s group). With
    /// `one_way`, only datagrams from a lower-numbered group to a higher one
    /// are cut (group 0 cannot reach group 1, group 1 still reaches group 0);
    /// otherwise every pair of groups is cut both ways.
    pub fn partition(&mut self, group: Vec<u16>, one_way: bool) {
        let groups = group.iter().map(|&g| usize::from(g) + 1).max().unwrap_or(1);
        let mut blocked = vec![false; groups * groups];
        for from in 0..groups {
            for to in 0..groups {
                blocked[from * groups + to] = if one_way { from < to } else { from != to };
            }
        }
        self.group = group;
        self.group.resize(self.group.len().max(1), 0);
        self.blocked = blocked;
        self.groups = groups;
    }

    /// Removes every partition at `now` (remembering it: see
    /// [`separated_before_heal`](Self::separated_before_heal) and
    /// [`lifted_at`](Self::lifted_at)).
    pub fn heal(&mut self, now: Time) {
        if self.groups > 1 {
            let cut = Cut {
                group: self.group.clone(),
                blocked: std::mem::take(&mut self.blocked),
                groups: self.groups,
            };
            self.lifted = Some((cut, now));
        }
        self.group.iter_mut().for_each(|g| *g = 0);
        self.blocked = vec![false];
        self.groups = 1;
    }

    /// Whether a partition is in force.
    pub fn is_partitioned(&self) -> bool {
        self.groups > 1
    }

    /// Whether datagrams from `from` to `to` are cut by a partition.
    pub fn is_cut(&self, from: u32, to: u32) -> bool {
        if self.groups == 1 {
            return false;
        }
        let g = |i: u32| usize::from(self.group.get(i as usize).copied().unwrap_or(0));
        self.blocked[g(from) * self.groups + g(to)]
    }

    /// Whether `a` and `b` cannot talk both ways.
    pub fn separated(&self, a: u32, b: u32) -> bool {
        self.is_cut(a, b) || self.is_cut(b, a)
    }

    /// When the last partition was lifted, if one was.
    pub fn lifted_at(&self) -> Option<Time> {
        self.lifted.as_ref().map(|(_, at)| *at)
    }

    /// Whether the last partition lifted cut node `a` off from anyone.
    pub fn separated_before_heal(&self, a: u32) -> bool {
        self.lifted.as_ref().is_some_and(|(cut, _)| {
            let g = usize::from(cut.group.get(a as usize).copied().unwrap_or(0));
            (0..cut.groups).any(|o| {
                o != g && (cut.blocked[g * cut.groups + o] || cut.blocked[o * cut.groups + g])
            })
        })
    }

    /// The base latency of the directed link `from -> to` (fixed per seed).
    pub fn link_latency(&self, from: u32, to: u32) -> Duration {
        let h = derive(self.link_seed, u64::from(from), u64::from(to));
        let u = (h >> 11) as f64 * (1.0 / (1u64 << 53) as f64);
        let (lo, hi) = self.links.spread;
        self.links.latency.mul_f64(lo + (hi - lo) * u)
    }

    /// The shortest time any datagram takes from one node to another: the
    /// typical latency times the low end of the spread (jitter only adds).
    /// Nothing one node sends reaches another node sooner, which is what
    /// lets the world handle distinct nodes' wakeups within that time of
    /// each other independently.
    pub fn min_latency(&self) -> Duration {
        self.links.latency.mul_f64(self.links.spread.0.max(0.0))
    }

    fn one_delivery(&self, rng: &mut SimRng, now: Time, base: Duration) -> Time {
        let jitter = self.links.jitter.mul_f64(rng.unit());
        now + base + jitter
    }

    /// Decides the fate of a datagram sent at `now` from node `from` to node
    /// `to`, drawing from `from`'s stream.
    pub fn route(&mut self, now: Time, from: u32, to: u32) -> Fate {
        let Some(mut rng) = self.rngs.get(from as usize).cloned() else {
            return Fate::Lost;
        };
        let mut stats = self.stats;
        let fate = self.route_with(&mut rng, &mut stats, now, from, to);
        self.rngs[from as usize] = rng;
        self.stats = stats;
        fate
    }

    /// [`route`](Self::route) with the sender's stream and the counters
    /// held by the caller: what nodes handled in parallel call, each with
    /// its own stream and counters (summed afterwards).
    pub(crate) fn route_with(
        &self,
        rng: &mut SimRng,
        stats: &mut NetStats,
        now: Time,
        from: u32,
        to: u32,
    ) -> Fate {
        stats.sent += 1;
        if self.is_cut(from, to) {
            stats.partitioned += 1;
            return Fate::Partitioned;
        }
        if rng.chance(self.loss) {
            stats.lost += 1;
            return Fate::Lost;
        }
        // Drawn only for a lossy sender, so runs without one replay as before.
        let outbound = self
            .outbound_loss
            .get(from as usize)
            .copied()
            .unwrap_or(0.0);
        if outbound > 0.0 && rng.chance(outbound) {
            stats.lost += 1;
            return Fate::Lost;
        }
        let base = self.link_latency(from, to);
        let first = self.one_delivery(rng, now, base);
        if rng.chance(self.duplicate) {
            stats.duplicated += 1;
            stats.delivered += 2;
            let second = self.one_delivery(rng, now, base);
            return Fate::Twice(first, second);
        }
        stats.delivered += 1;
        Fate::Once(first)
    }

    /// Adds counters kept apart (by nodes handled in parallel).
    pub(crate) fn add_stats(&mut self, other: &NetStats) {
        let s = &mut self.stats;
        s.sent += other.sent;
        s.delivered += other.delivered;
        s.lost += other.lost;
        s.partitioned += other.partitioned;
        s.duplicated += other.duplicated;
        s.unroutable += other.unroutable;
    }

    /// Counts a datagram addressed to no simulated node.
    pub fn count_unroutable(&mut self) {
        self.stats.sent += 1;
        self.stats.unroutable += 1;
    }

    /// The counters so far.
    pub fn stats(&self) -> NetStats {
        self.stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net() -> Network {
        Network::new(1, 4, NetProfile::Lan.links())
    }

    #[test]
    fn a_symmetric_partition_cuts_both_ways_and_heal_restores() {
        let mut n = net();
        n.partition(vec![0, 0, 1, 1], false);
        assert!(n.is_cut(0, 2) && n.is_cut(2, 0));
        assert!(!n.is_cut(0, 1) && !n.is_cut(2, 3));
        assert_eq!(n.route(Time::ZERO, 0, 3), Fate::Partitioned);
        n.heal(Time::ZERO);
        assert!(!n.is_cut(0, 2));
        assert!(matches!(n.route(Time::ZERO, 0, 3), Fate::Once(_)));
    }

    #[test]
    fn a_one_way_partition_cuts_one_direction_only() {
        let mut n = net();
        n.partition(vec![0, 0, 1, 1], true);
        assert!(n.is_cut(0, 2));
        assert!(!n.is_cut(2, 0));
        assert!(n.separated(2, 0));
    }

    #[test]
    fn full_loss_drops_everything_and_latency_is_per_link() {
        let mut n = net();
        n.set_loss(1.0);
        assert_eq!(n.route(Time::ZERO, 0, 1), Fate::Lost);
        assert_eq!(n.link_latency(0, 1), n.link_latency(0, 1));
        let l = n.link_latency(0, 1);
        assert!(l >= Duration::from_micros(125) && l < Duration::from_micros(375));
    }

    #[test]
    fn a_senders_decisions_do_not_depend_on_what_other_nodes_sent_before() {
        let (mut a, mut b) = (net(), net());
        for n in [&mut a, &mut b] {
            n.set_loss(0.3);
            n.set_duplicate(0.2);
        }
        let alone: Vec<Fate> = (0..50).map(|_| a.route(Time::ZERO, 0, 1)).collect();
        for _ in 0..50 {
            b.route(Time::ZERO, 2, 3);
        }
        let after: Vec<Fate> = (0..50).map(|_| b.route(Time::ZERO, 0, 1)).collect();
        assert_eq!(alone, after);
    }

    #[test]
    fn no_datagram_arrives_sooner_than_the_minimum_latency() {
        for p in NetProfile::ALL {
            let mut n = Network::new(3, 20, p.links());
            let min = n.min_latency();
            for from in 0..20 {
                for to in 0..20 {
                    assert!(n.link_latency(from, to) >= min);
                    if let Fate::Once(at) = n.route(Time::ZERO, from, to) {
                        assert!(at >= Time::ZERO + min);
                    }
                }
            }
        }
    }

    #[test]
    fn profiles_round_trip_through_their_names() {
        for p in NetProfile::ALL {
            assert_eq!(p.to_string().parse::<NetProfile>().unwrap(), p);
        }
        assert!("moon".parse::<NetProfile>().is_err());
    }
}
