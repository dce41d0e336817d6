//! Swarm testing: for each seed a random fault profile, then a liveness
//! phase that heals everything and requires agreement within a bound.
//!
//! Each seed draws its own profile (after TigerBeetle's VOPR and swarm
//! testing): a random subset of loss, duplication, a partition (two or three
//! sides, symmetric or one-way), crashes (some restarted), and a slow node,
//! each with random parameters, all within a [`FAULT_PHASE_S`]-second fault
//! phase. Then everything heals (no partition, loss or duplication, no slow
//! node; crashed nodes that were not restarted stay down) and every live
//! node's view must equal the set of live nodes within
//! [`liveness_bound`].
//!
//! # The bound, and why it is honest for today's core
//!
//! foca alone has no anti-entropy. After a partition longer than the
//! suspicion timeout the sides have declared each other down, and the only
//! thing that brings them back together is foca's periodic announce to down
//! members (`periodic_announce_to_down_members`, every 65 s with the LAN
//! profile): an announce to a member that holds us down makes it answer
//! `TurnUndead`, we renew our identity, and renewed identities win over the
//! down records on both sides. So the bound is
//!
//! `bound = 2 × announce-to-down period + detection bound`
//!
//! where the detection bound (`Config::detection_bound`: probe period,
//! probe, suspicion, and `max_transmissions` rounds of gossip) covers crashed
//! nodes that stay down, and two announce periods cover a first round that
//! lands on members that cannot help yet. With the LAN profile and 30 nodes
//! that is 130 s + 8.9 s ≈ 139 s, about 139 protocol periods. The check is
//! not weakened for a profile: a seed whose views are not all correct by
//! then fails, and the command that reproduces it is printed.

use std::fmt::Write as _;
use std::time::Duration;

use rollcall::core::Config;

use crate::error::SimError;
use crate::network::NetProfile;
use crate::report::RunReport;
use crate::rng::{streams, SimRng};
use crate::run::{run, RunSpec};
use crate::scenario::{Formation, Op, Plan, TimedOp};

/// Virtual seconds of the fault phase (after formation).
pub const FAULT_PHASE_S: f64 = 30.0;

/// The liveness bound: how long after the heal every live node's view
/// must be correct. See the module docs for the derivation.
pub fn liveness_bound(config: &Config) -> Duration {
    let announce_down = config
        .swim
        .periodic_announce_to_down_members
        .as_ref()
        .map(|p| p.frequency)
        .unwrap_or(config.swim.probe_period * 60);
    announce_down * 2 + config.detection_bound()
}

/// The fault profile of a seed: a plan and a description of it.
pub fn plan_for(seed: u64, nodes: u32, profile: NetProfile) -> (Plan, String) {
    let config = profile.config(nodes);
    let mut rng = SimRng::new(seed, streams::SWEEP);
    let mut ops = Vec::new();
    let mut what = Vec::new();
    let f = FAULT_PHASE_S;
    let seeds = vec![0u32];
    if rng.chance(0.5) {
        let p = rng.range_f64(0.01, 0.2);
        ops.push(TimedOp::new(0.0, Op::SetLoss { p }));
        what.push(format!("loss {:.1}%", p * 100.0));
    }
    if rng.chance(0.3) {
        let p = rng.range_f64(0.01, 0.1);
        ops.push(TimedOp::new(0.0, Op::SetDuplicate { p }));
        what.push(format!("duplication {:.1}%", p * 100.0));
    }
    if nodes >= 2 && rng.chance(0.5) {
        let sides = if nodes >= 3 && rng.chance(0.3) { 3 } else { 2 };
        let one_way = rng.chance(0.3);
        let start = rng.range_f64(0.0, f / 2.0);
        let end = rng.range_f64(start + 1.0, f);
        ops.push(TimedOp::new(
            start,
            Op::Partition {
                sides: Some(sides),
                groups: None,
                one_way,
            },
        ));
        ops.push(TimedOp::new(end, Op::Heal));
        what.push(format!(
            "{} partition into {sides} sides {start:.1}-{end:.1} s",
            if one_way { "one-way" } else { "symmetric" }
        ));
    }
    if nodes >= 4 && rng.chance(0.5) {
        let max = u64::from((nodes / 10).max(1));
        let k = 1 + rng.below(max);
        let mut victims: Vec<u32> = Vec::new();
        while victims.len() < k as usize {
            let v = 1 + rng.below(u64::from(nodes - 1)) as u32;
            if !victims.contains(&v) {
                victims.push(v);
            }
        }
        for v in victims {
            let at = rng.range_f64(0.0, f - 1.0);
            ops.push(TimedOp::new(at, Op::Crash { node: v }));
            if rng.chance(0.5) {
                let back = rng.range_f64(at + 0.5, f);
                ops.push(TimedOp::new(back, Op::Restart { node: v }));
                what.push(format!("crash n{v} at {at:.1} s, restart at {back:.1} s"));
            } else {
                what.push(format!("crash n{v} at {at:.1} s"));
            }
        }
    }
    if nodes >= 2 && rng.chance(0.3) {
        let node = 1 + rng.below(u64::from(nodes - 1)) as u32;
        let rtt = config.swim.probe_rtt.as_millis() as f64;
        let delay_ms = rng.range_f64(0.1 * rtt, 1.5 * rtt) as u64;
        let at = rng.range_f64(0.0, f / 2.0);
        ops.push(TimedOp::new(at, Op::Slow { node, delay_ms }));
        what.push(format!("n{node} slow by {delay_ms} ms from {at:.1} s"));
    }
    if what.is_empty() {
        what.push("no faults".to_owned());
    }
    // The liveness phase: heal everything at the end of the fault phase.
    for op in [
        Op::Heal,
        Op::SetLoss { p: 0.0 },
        Op::SetDuplicate { p: 0.0 },
    ] {
        ops.push(TimedOp::new(f, op));
    }
    for t in ops.clone() {
        if let Op::Slow { node, .. } = t.op {
            ops.push(TimedOp::new(f, Op::Unslow { node }));
        }
    }
    let bound = liveness_bound(&config).as_secs_f64();
    let mut plan = Plan {
        formation: Formation::Joined,
        seeds,
        duration: f + bound,
        ops,
        autoclean: None,
        replicants: Vec::new(),
    };
    plan.ops.sort_by(|a, b| a.at.total_cmp(&b.at));
    (plan, what.join("; "))
}

/// The outcome of one seed.
#[derive(Debug)]
pub struct SeedOutcome {
    /// The seed.
    pub seed: u64,
    /// Whether every live view was correct within the bound, with no view
    /// re-read by the audit.
    pub ok: bool,
    /// Seconds after the heal until every live view was correct.
    pub converged_after_s: Option<f64>,
    /// The fault profile, in words.
    pub faults: String,
    /// The run's full report.
    pub report: RunReport,
}

/// The command that reproduces one seed of a sweep.
pub fn reproduce(seed: u64, nodes: u32, profile: NetProfile) -> String {
    format!("ROLLCALL_SIM_SEED={seed} rollcall-sim sweep --nodes {nodes} --profile {profile}")
}

/// Runs one seed's fault profile and its liveness check.
pub fn run_seed(seed: u64, nodes: u32, profile: NetProfile) -> Result<SeedOutcome, SimError> {
    let (plan, faults) = plan_for(seed, nodes, profile);
    let spec = RunSpec {
        nodes,
        seed,
        profile,
        plan,
        label: "sweep".to_owned(),
        reproduce: reproduce(seed, nodes, profile),
        keep_log: false,
        stop_when_converged: true,
        tuning: crate::tuning::Tuning::default(),
        threads: 1,
        min_parallel: crate::parallel::MIN_PARALLEL,
    };
    let out = run(&spec, None)?;
    let converged_after_s = out.report.convergence_s;
    Ok(SeedOutcome {
        seed,
        ok: out.report.converged && out.report.audit_failure().is_none(),
        converged_after_s,
        faults,
        report: out.report,
    })
}

/// A one-line account of a seed's outcome.
pub fn describe(o: &SeedOutcome) -> String {
    let mut s = String::new();
    let _ = write!(
        s,
        "seed {:>6}: {} ",
        o.seed,
        if o.ok { "ok  " } else { "FAIL" }
    );
    match o.converged_after_s {
        Some(t) => {
            let _ = write!(s, "agreed {t:>7.2} s after heal");
        }
        None => {
            let _ = write!(
                s,
                "no agreement ({:.1}% correct, slowest knows {})",
                o.report.converged_fraction * 100.0,
                o.report.slowest_node_members
            );
        }
    }
    let _ = write!(s, "  [{}]", o.faults);
    if let Some(f) = o.report.audit_failure() {
        let _ = write!(s, "\n    {f}");
    }
    s
}
