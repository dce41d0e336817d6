//! Scenarios as data: a named [`Scenario`] or a TOML file becomes a [`Plan`],
//! a formation step and a timeline of [`Op`]s the runner applies in order.
//!
//! A scenario file looks like this (times in virtual seconds after the
//! cluster has formed; node indices count from 0):
//!
//! ```toml
//! formation = "joined"      # every node starts and joins node 0, the timeline
//!                           # waits for complete views (the default); or
//!                           # "restored": every node starts holding every
//!                           # other as alive (`Node::restore_members`), no join;
//!                           # "staggered": the timeline starts the nodes one
//!                           # after another over join_window, each joining the
//!                           # seeds; "none": the timeline starts them itself
//! join_window = 10.0        # only with formation = "staggered"
//! seeds = [0, 1]            # whom starting and restarting nodes join, and the
//!                           # static discovery list every node rediscovers
//! duration = 90.0           # how long to run after formation
//! autoclean = 60.0          # optional: Config::autoclean in seconds (default 24 h)
//! replicants = 12           # optional: the last 12 nodes run as replicants
//!                           # (or a list: replicants = [3, 4]); the others
//!                           # are core nodes, as is every node by default
//!
//! [[ops]]
//! at = 5.0
//! op = "partition"
//! sides = 2                 # or: groups = [[0, 1, 2], [3, 4]]; one_way = true
//!
//! [[ops]]
//! at = 25.0
//! op = "heal"
//!
//! [[ops]]
//! at = 30.0
//! op = "crash"
//! node = 3
//! ```
//!
//! Operations: `start`, `crash`, `restart` (same name, next generation, a
//! fresh node that joins the seeds), `partition`, `heal`, `set-loss` (`p`),
//! `set-duplicate` (`p`), `set-node-loss` (`node`, `p`: loss of the node's
//! outbound datagrams only), `slow` (`node`, `delay_ms`), `unslow` (`node`),
//! `force-leave` (`by`, `node`: node `by` runs `force-leave` on `node`).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::rng::{streams, SimRng};

/// A built-in scenario.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scenario {
    /// N nodes boot staggered over 10 s, each joining node 0.
    Join,
    /// A converged cluster (started with `restore_members`, no join storm,
    /// so 10,000 nodes can start; detection times match a joined start);
    /// one node's process crashes at 5 s (its host answers datagrams to the
    /// gossip port with "port unreachable").
    Crash,
    /// As `crash`, but the whole host goes down: silence.
    HostCrash,
    /// A formed cluster splits into two halves at 5 s and heals 60 s later
    /// (long enough for every side to see the other stopped at 1,000 nodes).
    PartitionHeal,
    /// A formed cluster splits into three equal sides at 5 s and heals 60 s later.
    Partition3,
    /// A formed cluster under random loss (`--loss`, default 10%); one node crashes at 5 s.
    Loss,
    /// A formed cluster; from 5 s to 45 s a random node crashes every 4 s and restarts 10 s later.
    Churn,
    /// A formed cluster; one node handles its inputs late (1.2 × probe_rtt) from 5 s to 35 s.
    SlowNode,
    /// A formed cluster for 300 s; a fraction of the nodes (`--slow-fraction`,
    /// at least one) is slow in bursts: 5 to 20 s during which it handles
    /// every input 1 to 3 s late (redrawn each second), then 10 to 30 s at
    /// normal speed.
    SlowNodes,
    /// A formed cluster for 300 s; from 5 s one node's outbound datagrams are
    /// lost with probability `--loss` (its inbound link is healthy).
    LossyNode,
    /// A formed cluster; at 5 s one live node force-leaves another, which
    /// must stay out. On odd-drawn seeds the victim is first cut off alone
    /// (at 3 s, healed at 20 s), so it misses the notice, keeps running, and
    /// comes back asserting itself after the heal.
    ForceLeave,
    /// A formed cluster with `autoclean` = 60 s; one node crashes at 5 s and
    /// must be forgotten by every node about 60 s later.
    Autoclean,
    /// A formed cluster with `autoclean` = 60 s splits into two halves at 5 s
    /// for 120 s, so each side forgets the other; the sides meet again only
    /// through static discovery (seeds: nodes 0, 1, N/2, N/2+1).
    LongPartition,
    /// Roles: the first third of the nodes are core nodes, the rest one
    /// core node and replicants. A formed cluster splits there at 5 s and
    /// heals 60 s later: the smaller side holds more core nodes, so it
    /// wins autoheal and the larger side rejoins it.
    PartitionRoles,
}

impl Scenario {
    /// Every built-in scenario.
    pub const ALL: [Scenario; 14] = [
        Scenario::Join,
        Scenario::Crash,
        Scenario::HostCrash,
        Scenario::PartitionHeal,
        Scenario::Partition3,
        Scenario::Loss,
        Scenario::Churn,
        Scenario::SlowNode,
        Scenario::SlowNodes,
        Scenario::LossyNode,
        Scenario::ForceLeave,
        Scenario::Autoclean,
        Scenario::LongPartition,
        Scenario::PartitionRoles,
    ];

    /// The `autoclean` the lifecycle scenarios run with (virtual seconds).
    pub const SHORT_AUTOCLEAN_S: f64 = 60.0;

    /// The plan of this scenario for `nodes` nodes running `config`.
    /// `duration` (seconds after formation) overrides the scenario's default
    /// (which is given for a 1 s probe period and scales with
    /// `config`'s, so WAN runs last long enough to detect a crash); `knobs`
    /// sizes the `loss`, `lossy-node` and `slow-nodes` scenarios;
    /// `config`'s probe_rtt sizes the slow node's delay.
    pub fn plan(
        self,
        nodes: u32,
        seed: u64,
        duration: Option<f64>,
        knobs: Knobs,
        config: &rollcall::core::Config,
    ) -> Plan {
        let loss = knobs.loss;
        let probe_rtt = config.swim.probe_rtt;
        let period = config.swim.probe_period.as_secs_f64().max(1.0);
        let mut rng = SimRng::new(seed, streams::SCENARIO);
        let mut ops = Vec::new();
        let mut seeds = vec![0];
        let mut autoclean = None;
        let mut replicants = Vec::new();
        // A node other than the seed, chosen by the seed.
        let victim = |rng: &mut SimRng| {
            if nodes > 1 {
                1 + rng.below(u64::from(nodes - 1)) as u32
            } else {
                0
            }
        };
        let (formation, default_duration) = match self {
            Scenario::Join => {
                ops.extend(join_starts(nodes, 10.0));
                (Formation::None, 60.0)
            }
            Scenario::Crash => {
                ops.push(TimedOp::new(
                    5.0,
                    Op::Crash {
                        node: victim(&mut rng),
                    },
                ));
                (Formation::Restored, 60.0)
            }
            Scenario::HostCrash => {
                ops.push(TimedOp::new(
                    5.0,
                    Op::HostCrash {
                        node: victim(&mut rng),
                    },
                ));
                (Formation::Restored, 60.0)
            }
            Scenario::PartitionHeal | Scenario::Partition3 => {
                let sides = if self == Scenario::PartitionHeal {
                    2
                } else {
                    3
                };
                ops.push(TimedOp::new(
                    5.0,
                    Op::Partition {
                        sides: Some(sides),
                        groups: None,
                        one_way: false,
                    },
                ));
                // At 1,000 nodes the sides need 40-60 s to see each other
                // stopped (Lifeguard holds suspicions until confirmed).
                ops.push(TimedOp::new(65.0, Op::Heal));
                (Formation::Joined, 180.0)
            }
            Scenario::Loss => {
                ops.push(TimedOp::new(0.0, Op::SetLoss { p: loss }));
                ops.push(TimedOp::new(
                    5.0,
                    Op::Crash {
                        node: victim(&mut rng),
                    },
                ));
                (Formation::Joined, 60.0)
            }
            Scenario::Churn => {
                let mut t = 5.0;
                while t <= 45.0 {
                    let node = victim(&mut rng);
                    ops.push(TimedOp::new(t, Op::Crash { node }));
                    ops.push(TimedOp::new(t + 10.0, Op::Restart { node }));
                    t += 4.0;
                }
                (Formation::Joined, 120.0)
            }
            Scenario::SlowNode => {
                let node = victim(&mut rng);
                let delay_ms = (probe_rtt.as_millis() as u64 * 6 / 5).max(1);
                ops.push(TimedOp::new(5.0, Op::Slow { node, delay_ms }));
                ops.push(TimedOp::new(35.0, Op::Unslow { node }));
                (Formation::Joined, 90.0)
            }
            Scenario::SlowNodes => {
                let end = duration.unwrap_or(300.0 * period);
                for node in distinct_victims(nodes, knobs.slow_fraction, &mut rng) {
                    ops.extend(slow_bursts(node, end, &mut rng));
                }
                (Formation::Joined, 300.0)
            }
            Scenario::LossyNode => {
                let node = victim(&mut rng);
                ops.push(TimedOp::new(5.0, Op::SetNodeLoss { node, p: loss }));
                (Formation::Joined, 300.0)
            }
            Scenario::ForceLeave => {
                let node = victim(&mut rng);
                // Another node (the seed included) runs the force-leave.
                let by = if nodes > 2 {
                    let b = rng.below(u64::from(nodes - 1)) as u32;
                    if b >= node {
                        b + 1
                    } else {
                        b
                    }
                } else {
                    0
                };
                if nodes > 2 && rng.chance(0.5) {
                    let others: Vec<u32> = (0..nodes).filter(|&i| i != node).collect();
                    ops.push(TimedOp::new(
                        3.0,
                        Op::Partition {
                            sides: None,
                            groups: Some(vec![others, vec![node]]),
                            one_way: false,
                        },
                    ));
                    ops.push(TimedOp::new(20.0, Op::Heal));
                }
                ops.push(TimedOp::new(5.0, Op::ForceLeave { by, node }));
                (Formation::Joined, 90.0)
            }
            Scenario::Autoclean => {
                autoclean = Some(Self::SHORT_AUTOCLEAN_S);
                ops.push(TimedOp::new(
                    5.0,
                    Op::Crash {
                        node: victim(&mut rng),
                    },
                ));
                (Formation::Joined, 120.0)
            }
            Scenario::LongPartition => {
                autoclean = Some(Self::SHORT_AUTOCLEAN_S);
                let h = nodes / 2;
                seeds = vec![0, 1.min(nodes - 1), h, (h + 1).min(nodes - 1)];
                seeds.sort_unstable();
                seeds.dedup();
                ops.push(TimedOp::new(
                    5.0,
                    Op::Partition {
                        sides: Some(2),
                        groups: None,
                        one_way: false,
                    },
                ));
                ops.push(TimedOp::new(125.0, Op::Heal));
                (Formation::Joined, 320.0)
            }
            Scenario::PartitionRoles => {
                let (small, large) = Self::role_sides(nodes);
                replicants = large.iter().skip(1).copied().collect();
                if !large.is_empty() {
                    ops.push(TimedOp::new(
                        5.0,
                        Op::Partition {
                            sides: None,
                            groups: Some(vec![small, large]),
                            one_way: false,
                        },
                    ));
                    ops.push(TimedOp::new(65.0, Op::Heal));
                }
                (Formation::Joined, 180.0)
            }
        };
        let mut plan = Plan {
            formation,
            seeds,
            duration: duration.unwrap_or(default_duration * period),
            ops,
            autoclean,
            replicants,
        };
        plan.sort();
        plan
    }

    /// The two sides of `partition-roles` for `nodes` nodes: the first
    /// third (at least one node), all core nodes; and the rest, whose
    /// first node is a core node and whose others are replicants.
    pub fn role_sides(nodes: u32) -> (Vec<u32>, Vec<u32>) {
        let a = (nodes / 3).max(1).min(nodes);
        ((0..a).collect(), (a..nodes).collect())
    }
}

/// The numbers that size the parametric scenarios.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Knobs {
    /// Loss probability: of every datagram (`loss`), or of one node's
    /// outbound datagrams (`lossy-node`). 10% by default.
    pub loss: f64,
    /// The fraction of nodes that is slow in `slow-nodes` (at least one
    /// node). 5% by default.
    pub slow_fraction: f64,
}

impl Default for Knobs {
    fn default() -> Self {
        Self {
            loss: 0.1,
            slow_fraction: 0.05,
        }
    }
}

/// `fraction` of `nodes` (rounded, at least one, never node 0, the seed),
/// distinct, drawn from `rng`.
fn distinct_victims(nodes: u32, fraction: f64, rng: &mut SimRng) -> Vec<u32> {
    if nodes < 2 {
        return vec![];
    }
    let want = ((f64::from(nodes) * fraction).round() as u32).clamp(1, nodes - 1);
    let mut pool: Vec<u32> = (1..nodes).collect();
    let mut chosen = Vec::with_capacity(want as usize);
    for _ in 0..want {
        let k = rng.below(pool.len() as u64) as usize;
        chosen.push(pool.swap_remove(k));
    }
    chosen.sort_unstable();
    chosen
}

/// The timeline of one node that is slow in bursts until `end`: from 5 to
/// 15 s in, bursts of 5 to 20 s during which every input is handled 1 to
/// 3 s late (the delay redrawn each second, so inputs also reorder against
/// the node's timers), separated by 10 to 30 s at normal speed.
fn slow_bursts(node: u32, end: f64, rng: &mut SimRng) -> Vec<TimedOp> {
    let mut ops = Vec::new();
    let mut t = rng.range_f64(5.0, 15.0);
    while t + 5.0 < end {
        let stop = (t + rng.range_f64(5.0, 20.0)).min(end);
        let mut s = t;
        while s < stop {
            let delay_ms = rng.range_f64(1000.0, 3000.0) as u64;
            ops.push(TimedOp::new(s, Op::Slow { node, delay_ms }));
            s += 1.0;
        }
        ops.push(TimedOp::new(stop, Op::Unslow { node }));
        t = stop + rng.range_f64(10.0, 30.0);
    }
    ops
}

/// The `start` operations of nodes booting staggered over `window` seconds:
/// node 0 (the seed) at 0, the last node at `window`.
pub fn join_starts(nodes: u32, window: f64) -> impl Iterator<Item = TimedOp> {
    (0..nodes).map(move |i| {
        let at = if nodes > 1 {
            window * f64::from(i) / f64::from(nodes - 1)
        } else {
            0.0
        };
        TimedOp::new(at, Op::Start { node: i })
    })
}

impl fmt::Display for Scenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Scenario::Join => "join",
            Scenario::Crash => "crash",
            Scenario::HostCrash => "host-crash",
            Scenario::PartitionHeal => "partition-heal",
            Scenario::Partition3 => "partition3",
            Scenario::Loss => "loss",
            Scenario::Churn => "churn",
            Scenario::SlowNode => "slow-node",
            Scenario::SlowNodes => "slow-nodes",
            Scenario::LossyNode => "lossy-node",
            Scenario::ForceLeave => "force-leave",
            Scenario::Autoclean => "autoclean",
            Scenario::LongPartition => "long-partition",
            Scenario::PartitionRoles => "partition-roles",
        })
    }
}

impl FromStr for Scenario {
    type Err = ScenarioError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Scenario::ALL
            .into_iter()
            .find(|sc| sc.to_string() == s)
            .ok_or_else(|| ScenarioError::UnknownScenario(s.to_owned()))
    }
}

/// How the cluster is formed before the timeline starts. Scenario files
/// name these `"joined"`, `"none"` and `"restored"`, and have one more word,
/// `"staggered"`, for [`Formation::None`] with the nodes' starts spread over
/// `join_window` added to the timeline ([`join_starts`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Formation {
    /// Formed by joining: every node starts within a few milliseconds
    /// ([`formation_stagger`](crate::run::formation_stagger) apart) and
    /// joins node 0, and the run waits (up to a bound) until every view is
    /// complete; the timeline starts after that.
    #[default]
    Joined,
    /// No node runs before the timeline: it starts them itself.
    None,
    /// Every node starts at once holding every other node as alive
    /// (`Node::restore_members`), with no join exchange: a large cluster
    /// starts converged without a join storm.
    Restored,
}

/// One operation of a timeline.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Op {
    /// Boot a node; it joins the plan's seeds (the first seed joins nobody).
    Start {
        /// The node.
        node: u32,
    },
    /// Stop a node's process at once, losing its state; its host answers
    /// datagrams to the gossip port with "port unreachable".
    Crash {
        /// The node.
        node: u32,
    },
    /// Stop a node's host at once: as `crash`, but nothing answers.
    HostCrash {
        /// The node.
        node: u32,
    },
    /// Boot a crashed node again: same name, next generation, fresh state,
    /// joining the plan's seeds.
    Restart {
        /// The node.
        node: u32,
    },
    /// Cut the network into sides.
    Partition {
        /// Split into this many equal sides of consecutive nodes.
        #[serde(default)]
        sides: Option<u32>,
        /// Or these explicit sides; unlisted nodes join the first.
        #[serde(default)]
        groups: Option<Vec<Vec<u32>>>,
        /// Cut only from lower-numbered sides to higher ones.
        #[serde(default)]
        one_way: bool,
    },
    /// Remove every partition.
    Heal,
    /// Lose each datagram with probability `p`.
    SetLoss {
        /// Probability in [0, 1].
        p: f64,
    },
    /// Deliver each datagram twice with probability `p`.
    SetDuplicate {
        /// Probability in [0, 1].
        p: f64,
    },
    /// Lose each datagram node `node` sends with probability `p` (on top of
    /// `set-loss`); its inbound link is untouched.
    SetNodeLoss {
        /// The node.
        node: u32,
        /// Probability in [0, 1].
        p: f64,
    },
    /// Make a node handle every input `delay_ms` late.
    Slow {
        /// The node.
        node: u32,
        /// The delay in milliseconds.
        delay_ms: u64,
    },
    /// Return a slow node to normal speed.
    Unslow {
        /// The node.
        node: u32,
    },
    /// Node `by` runs `force-leave` on `node`; from then on `node` is out of
    /// the cluster (views are correct without it) and must stay out.
    ForceLeave {
        /// The node that runs the command.
        by: u32,
        /// The node removed.
        node: u32,
    },
}

impl Op {
    /// The side of each of `nodes` nodes for a `Partition` op (None for other ops).
    pub fn sides_of(&self, nodes: u32) -> Option<Vec<u16>> {
        let Op::Partition { sides, groups, .. } = self else {
            return None;
        };
        let mut side = vec![0u16; nodes as usize];
        if let Some(groups) = groups {
            for (g, members) in groups.iter().enumerate() {
                for &m in members {
                    if let Some(s) = side.get_mut(m as usize) {
                        *s = g as u16;
                    }
                }
            }
        } else {
            let k = u64::from(sides.unwrap_or(2).max(1));
            for (i, s) in side.iter_mut().enumerate() {
                *s = (i as u64 * k / u64::from(nodes.max(1))) as u16;
            }
        }
        Some(side)
    }

    fn nodes(&self) -> Vec<u32> {
        match self {
            Op::Start { node }
            | Op::Crash { node }
            | Op::HostCrash { node }
            | Op::Restart { node }
            | Op::Slow { node, .. }
            | Op::SetNodeLoss { node, .. }
            | Op::Unslow { node } => vec![*node],
            Op::ForceLeave { by, node } => vec![*by, *node],
            Op::Partition {
                groups: Some(g), ..
            } => g.iter().flatten().copied().collect(),
            _ => vec![],
        }
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Op::Start { node } => write!(f, "start n{node}"),
            Op::Crash { node } => write!(f, "crash n{node}"),
            Op::HostCrash { node } => write!(f, "host crash n{node}"),
            Op::Restart { node } => write!(f, "restart n{node}"),
            Op::Partition {
                sides,
                groups,
                one_way,
            } => {
                let how = if *one_way { "one-way" } else { "symmetric" };
                match groups {
                    Some(g) => write!(f, "partition ({how}) into {} groups", g.len()),
                    None => write!(f, "partition ({how}) into {} sides", sides.unwrap_or(2)),
                }
            }
            Op::Heal => write!(f, "heal"),
            Op::SetLoss { p } => write!(f, "set loss {p}"),
            Op::SetDuplicate { p } => write!(f, "set duplicate {p}"),
            Op::SetNodeLoss { node, p } => write!(f, "n{node} loses {p} of what it sends"),
            Op::Slow { node, delay_ms } => write!(f, "slow n{node} by {delay_ms} ms"),
            Op::Unslow { node } => write!(f, "unslow n{node}"),
            Op::ForceLeave { by, node } => write!(f, "n{by} force-leaves n{node}"),
        }
    }
}

/// An operation at a time (virtual seconds after formation).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TimedOp {
    /// When, in seconds after formation.
    pub at: f64,
    /// What.
    #[serde(flatten)]
    pub op: Op,
}

impl TimedOp {
    /// `op` at `at` seconds.
    pub fn new(at: f64, op: Op) -> Self {
        Self { at, op }
    }
}

/// A whole run: how the cluster forms, then a timeline.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    /// How the cluster forms before the timeline.
    #[serde(default)]
    pub formation: Formation,
    /// Whom starting and restarting nodes join.
    #[serde(default = "default_seeds")]
    pub seeds: Vec<u32>,
    /// How long the timeline runs, in virtual seconds after formation.
    pub duration: f64,
    /// The timeline, in time order.
    #[serde(default)]
    pub ops: Vec<TimedOp>,
    /// `Config::autoclean` in virtual seconds; `None` keeps the profile's (24 h).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub autoclean: Option<f64>,
    /// The nodes that run as replicants; every other node is a core node.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub replicants: Vec<u32>,
}

fn default_seeds() -> Vec<u32> {
    vec![0]
}

/// The TOML form of a plan, with the `staggered` formation shorthand.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PlanFile {
    #[serde(default)]
    formation: Option<String>,
    #[serde(default)]
    join_window: Option<f64>,
    #[serde(default = "default_seeds")]
    seeds: Vec<u32>,
    duration: f64,
    #[serde(default)]
    ops: Vec<TimedOp>,
    #[serde(default)]
    autoclean: Option<f64>,
    #[serde(default)]
    replicants: Option<Replicants>,
}

/// `replicants` in a scenario file: how many (the last nodes), or which.
#[derive(Deserialize)]
#[serde(untagged)]
enum Replicants {
    Count(u32),
    List(Vec<u32>),
}

impl Plan {
    /// Reads a plan from TOML text (see the module docs for the format).
    pub fn from_toml(text: &str, nodes: u32) -> Result<Self, ScenarioError> {
        let file: PlanFile =
            toml::from_str(text).map_err(|e| ScenarioError::Parse(e.to_string()))?;
        let mut ops = file.ops;
        let formation = file.formation.as_deref().unwrap_or("joined");
        if file.join_window.is_some() && formation != "staggered" {
            return Err(ScenarioError::Invalid(
                "join_window needs formation = \"staggered\"".into(),
            ));
        }
        let formation = match formation {
            "joined" => Formation::Joined,
            "none" => Formation::None,
            "restored" => Formation::Restored,
            "staggered" => {
                let window = file.join_window.unwrap_or(10.0);
                if !(window.is_finite() && window >= 0.0) {
                    return Err(ScenarioError::Invalid(format!(
                        "join_window must be a non-negative number of seconds, not {window}"
                    )));
                }
                ops.extend(join_starts(nodes, window));
                Formation::None
            }
            // The words of earlier releases, each now meaning one thing.
            "converged" => {
                return Err(ScenarioError::Invalid(
                    "formation = \"converged\" is now called \"joined\" (every node starts \
                     and joins node 0; \"restored\" starts every node holding every other)"
                        .into(),
                ))
            }
            "join" => {
                return Err(ScenarioError::Invalid(
                    "formation = \"join\" is now called \"staggered\" (nodes start one \
                     after another over join_window)"
                        .into(),
                ))
            }
            other => {
                return Err(ScenarioError::Invalid(format!(
                    "formation must be \"joined\", \"restored\", \"staggered\" or \"none\", not {other:?}"
                )))
            }
        };
        let replicants = match file.replicants {
            None => Vec::new(),
            Some(Replicants::List(list)) => list,
            Some(Replicants::Count(k)) if k <= nodes => (nodes - k..nodes).collect(),
            Some(Replicants::Count(k)) => {
                return Err(ScenarioError::Invalid(format!(
                    "replicants = {k} is more than the {nodes} nodes"
                )))
            }
        };
        let mut plan = Plan {
            formation,
            seeds: file.seeds,
            duration: file.duration,
            ops,
            autoclean: file.autoclean,
            replicants,
        };
        plan.sort();
        plan.validate(nodes)?;
        Ok(plan)
    }

    fn sort(&mut self) {
        // Stable: operations at one instant keep their written order.
        self.ops.sort_by(|a, b| a.at.total_cmp(&b.at));
    }

    /// Checks every field against `nodes` nodes; the error names the problem.
    pub fn validate(&self, nodes: u32) -> Result<(), ScenarioError> {
        let bad = |msg: String| Err(ScenarioError::Invalid(msg));
        if nodes == 0 {
            return bad("a simulation needs at least 1 node".into());
        }
        if !(self.duration.is_finite() && self.duration > 0.0) {
            return bad(format!(
                "duration must be a positive number of seconds, not {}",
                self.duration
            ));
        }
        if self.duration > 1e7 {
            return bad(format!(
                "duration {} s is too long (at most 1e7)",
                self.duration
            ));
        }
        if let Some(a) = self.autoclean {
            if !(a.is_finite() && a > 0.0 && a <= 1e7) {
                return bad(format!(
                    "autoclean must be a positive number of seconds, not {a}"
                ));
            }
        }
        if self.seeds.is_empty() {
            return bad("seeds must name at least one node".into());
        }
        if let Some(&s) = self.seeds.iter().find(|&&s| s >= nodes) {
            return bad(format!(
                "seed node {s} does not exist (nodes are 0..{nodes})"
            ));
        }
        if let Some(&r) = self.replicants.iter().find(|&&r| r >= nodes) {
            return bad(format!(
                "replicant node {r} does not exist (nodes are 0..{nodes})"
            ));
        }
        for (k, t) in self.ops.iter().enumerate() {
            let at = format!("ops[{k}] ({} at {} s)", t.op, t.at);
            if !(t.at.is_finite() && t.at >= 0.0) {
                return bad(format!(
                    "{at}: time must be a non-negative number of seconds"
                ));
            }
            if t.at > self.duration {
                return bad(format!(
                    "{at}: after the end of the run ({} s)",
                    self.duration
                ));
            }
            if let Some(&n) = t.op.nodes().iter().find(|&&n| n >= nodes) {
                return bad(format!(
                    "{at}: node {n} does not exist (nodes are 0..{nodes})"
                ));
            }
            match &t.op {
                Op::SetLoss { p } | Op::SetDuplicate { p } | Op::SetNodeLoss { p, .. }
                    if !(0.0..=1.0).contains(p) =>
                {
                    return bad(format!("{at}: probability must be within [0, 1]"));
                }
                Op::ForceLeave { by, node } if by == node => {
                    return bad(format!("{at}: a node cannot force-leave itself"));
                }
                Op::Slow { delay_ms, .. } if *delay_ms > 3_600_000 => {
                    return bad(format!("{at}: delay_ms is more than an hour"));
                }
                Op::Partition {
                    sides,
                    groups,
                    one_way: _,
                } => match (sides, groups) {
                    (Some(_), Some(_)) => {
                        return bad(format!("{at}: give either sides or groups, not both"))
                    }
                    (Some(s), None) if *s < 2 || *s > nodes.min(u32::from(u16::MAX)) => {
                        return bad(format!("{at}: sides must be between 2 and the node count"))
                    }
                    (None, Some(g)) => {
                        if g.len() < 2 || g.len() > usize::from(u16::MAX) {
                            return bad(format!("{at}: groups must list at least 2 groups"));
                        }
                        if g.iter().any(|m| m.is_empty()) {
                            return bad(format!("{at}: a group is empty"));
                        }
                        let mut seen = std::collections::BTreeSet::new();
                        if let Some(dup) = g.iter().flatten().find(|&&m| !seen.insert(m)) {
                            return bad(format!("{at}: node {dup} is in two groups"));
                        }
                    }
                    _ => {}
                },
                _ => {}
            }
        }
        Ok(())
    }
}

/// Why a scenario cannot be used. Nothing has run when this is returned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScenarioError {
    /// The name is not a built-in scenario.
    #[error(
        "unknown scenario {0:?} (expected one of: join, crash, host-crash, partition-heal, partition3, loss, churn, slow-node, slow-nodes, lossy-node, force-leave, autoclean, long-partition, partition-roles)"
    )]
    UnknownScenario(String),
    /// The file is not valid TOML or does not have the plan's shape.
    #[error("scenario file: {0}")]
    Parse(String),
    /// The plan is well-formed but not valid for this run.
    #[error("scenario: {0}")]
    Invalid(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_scenario_round_trips_through_its_name() {
        for s in Scenario::ALL {
            assert_eq!(s.to_string().parse::<Scenario>().unwrap(), s);
        }
        let e = "nope".parse::<Scenario>().unwrap_err().to_string();
        assert!(e.contains("partition-heal"), "{e}");
    }

    #[test]
    fn a_scenario_file_becomes_a_sorted_valid_plan() {
        let text = r#"
            duration = 30
            [[ops]]
            at = 10
            op = "heal"
            [[ops]]
            at = 2
            op = "partition"
            groups = [[0, 1], [2]]
            one_way = true
        "#;
        let plan = Plan::from_toml(text, 3).unwrap();
        assert_eq!(plan.ops[0].op.sides_of(3), Some(vec![0, 0, 1]));
        assert_eq!(plan.ops[1].op, Op::Heal);
    }

    #[test]
    fn a_bad_scenario_file_names_the_problem() {
        let cases = [
            (
                "duration = 10\n[[ops]]\nat = 1\nop = \"crash\"\nnode = 9",
                "node 9",
            ),
            (
                "duration = 10\n[[ops]]\nat = 11\nop = \"heal\"",
                "after the end",
            ),
            (
                "duration = 10\n[[ops]]\nat = 1\nop = \"explode\"",
                "explode",
            ),
            ("duration = -1", "duration"),
            (
                "duration = 10\n[[ops]]\nat = 1\nop = \"set-loss\"\np = 2.0",
                "probability",
            ),
            ("duration = 10\nformation = \"x\"", "formation"),
            (
                "duration = 10\nformation = \"converged\"",
                "now called \"joined\"",
            ),
            (
                "duration = 10\nformation = \"join\"",
                "now called \"staggered\"",
            ),
            (
                "duration = 10\njoin_window = 5",
                "needs formation = \"staggered\"",
            ),
            ("nodes = 3", "nodes"),
            ("duration = 10\nreplicants = 4", "more than the 3 nodes"),
            ("duration = 10\nreplicants = [0, 3]", "replicant node 3"),
            (
                "duration = 10\n[[ops]]\nat = 1\nop = \"partition\"\ngroups = [[0], [0]]",
                "two groups",
            ),
        ];
        for (text, needle) in cases {
            let e = Plan::from_toml(text, 3).unwrap_err().to_string();
            assert!(
                e.contains(needle),
                "{text:?} gave {e:?}, expected {needle:?}"
            );
        }
    }

    #[test]
    fn each_formation_word_names_one_formation() {
        let plan = |f: &str| Plan::from_toml(&format!("duration = 30\n{f}"), 4).unwrap();
        assert_eq!(plan("").formation, Formation::Joined);
        assert_eq!(plan("formation = \"joined\"").formation, Formation::Joined);
        assert_eq!(
            plan("formation = \"restored\"").formation,
            Formation::Restored
        );
        assert_eq!(plan("formation = \"none\"").formation, Formation::None);
        assert!(plan("formation = \"none\"").ops.is_empty());
        let staggered = plan("formation = \"staggered\"\njoin_window = 3");
        assert_eq!(staggered.formation, Formation::None);
        let starts: Vec<_> = staggered.ops.iter().map(|t| (t.at, &t.op)).collect();
        assert_eq!(starts.len(), 4);
        assert_eq!(starts[3], (3.0, &Op::Start { node: 3 }));
        // A plan written out (as `sweep --save-failures` does) reads back.
        for formation in [Formation::Joined, Formation::Restored, Formation::None] {
            let p = Plan {
                formation,
                ..plan("")
            };
            let text = toml::to_string(&p).unwrap();
            assert_eq!(Plan::from_toml(&text, 4).unwrap(), p, "{text}");
        }
    }

    #[test]
    fn replicants_are_given_by_count_from_the_last_node_or_by_list() {
        let plan = |r: &str| Plan::from_toml(&format!("duration = 30\n{r}"), 5).unwrap();
        assert_eq!(plan("").replicants, Vec::<u32>::new());
        assert_eq!(plan("replicants = 2").replicants, [3, 4]);
        assert_eq!(plan("replicants = [0, 2]").replicants, [0, 2]);
        let p = plan("replicants = [1]");
        let text = toml::to_string(&p).unwrap();
        assert_eq!(Plan::from_toml(&text, 5).unwrap(), p, "{text}");
    }

    #[test]
    fn partition_roles_puts_more_core_nodes_on_the_smaller_side() {
        let p = Scenario::PartitionRoles.plan(
            20,
            1,
            None,
            Knobs::default(),
            &rollcall::core::Config::lan(20),
        );
        let (small, large) = Scenario::role_sides(20);
        assert!(small.len() < large.len());
        let cores = |side: &[u32]| side.iter().filter(|n| !p.replicants.contains(n)).count();
        assert!(cores(&small) > cores(&large));
        assert_eq!(cores(&large), 1);
        p.validate(20).unwrap();
    }

    #[test]
    fn the_join_scenario_starts_every_node_within_the_window() {
        let p = Scenario::Join.plan(
            5,
            1,
            None,
            Knobs::default(),
            &rollcall::core::Config::lan(5),
        );
        assert_eq!(p.formation, Formation::None);
        assert_eq!(p.ops.len(), 5);
        assert_eq!(p.ops[4].at, 10.0);
    }
}
