//! One built-in scenario across many seeds, each checked for the lifecycle
//! invariants (`rollcall-sim seeds`).
//!
//! Every seed runs the scenario to its end (at least [`agreement_bound`]
//! past its last operation) and must pass:
//!
//! 1. **Agreement.** After the last operation of the timeline (the last
//!    fault: a heal, a crash, a force-leave) every live node's view equals
//!    the set of live nodes within [`agreement_bound`], and still does at
//!    the end. Force-left nodes are not live.
//! 2. **No resurrection.** No node reports `MemberUp` for a force-left node
//!    at the force-left generation (any renewal of it) after the force-leave.
//! 3. **Bounded view.** No node ever holds more member records than
//!    [`view_bound`]: one per other name (live or recently down) plus one
//!    down record of the node's own previous identity, which foca keeps
//!    after the node renews (autoheal's loser, a refuted false positive)
//!    until autoclean; in `autoclean`, at the end no live node holds any
//!    record of the crashed node (it was forgotten everywhere); in
//!    `long-partition`, at the heal no node holds any record of the other
//!    side.
//! 4. **Honest measurement.** No view was re-read by the world's audit
//!    (`views_audited` = 0): a view that changed without an event would
//!    be repaired inside the numbers above. A failure names the node and
//!    the time of the first one.
//!
//! # The bound
//!
//! `bound = 2 × announce-to-down period + detection bound + discovery interval`
//!
//! The first two terms are the sweep's liveness bound
//! ([`crate::sweep::liveness_bound`]): sides that hold each other down meet
//! through foca's periodic announce to down members at the latest. The third
//! (the core's `rediscovery.in_cluster`, 30 s) covers sides that forgot
//! each other (a partition longer than autoclean): they hold no record to
//! announce to and meet only at the next static-discovery round. With the
//! LAN profile (1 s protocol period) that is 130 s + detection (about 9 s at
//! 30 nodes) + 30 s, about 169 protocol periods.

use std::fmt::Write as _;
use std::time::Duration;

use rollcall::core::Config;

use crate::error::SimError;
use crate::network::NetProfile;
use crate::report::RunReport;
use crate::run::{run, RunSpec};
use crate::scenario::{Knobs, Scenario};
use crate::sweep::liveness_bound;
use crate::tuning::Tuning;

/// How long after the last operation every live view must be correct.
/// See the module docs.
pub fn agreement_bound(config: &Config) -> Duration {
    liveness_bound(config) + config.rediscovery.in_cluster
}

/// The most member records a node of an `nodes`-node world may hold: the
/// `nodes - 1` other names, plus a down record of its own previous identity
/// after a renewal (see the module docs).
pub fn view_bound(nodes: u32) -> u32 {
    nodes
}

/// The bound in protocol periods.
pub fn bound_in_periods(config: &Config) -> f64 {
    agreement_bound(config).as_secs_f64() / config.swim.probe_period.as_secs_f64()
}

/// The command that reproduces one seed.
pub fn reproduce(
    scenario: Scenario,
    seed: u64,
    nodes: u32,
    profile: NetProfile,
    sync: bool,
) -> String {
    format!(
        "rollcall-sim seeds --scenario {scenario} --nodes {nodes} --profile {profile} --seed {seed}{}",
        if sync { "" } else { " --no-sync" }
    )
}

/// The run of one seed: the scenario's plan, run at least `bound` past its
/// last operation.
pub fn spec_for(
    scenario: Scenario,
    seed: u64,
    nodes: u32,
    profile: NetProfile,
    tuning: Tuning,
) -> RunSpec {
    let config = profile.configure(nodes, &tuning);
    let mut plan = scenario.plan(nodes, seed, None, Knobs::default(), &config);
    let last = plan.ops.last().map_or(0.0, |t| t.at);
    let bound = agreement_bound(&config).as_secs_f64();
    plan.duration = plan.duration.max(last + bound + 5.0);
    RunSpec {
        nodes,
        seed,
        profile,
        plan,
        label: scenario.to_string(),
        reproduce: reproduce(scenario, seed, nodes, profile, tuning.sync),
        keep_log: false,
        stop_when_converged: false,
        tuning,
        threads: 1,
        min_parallel: crate::parallel::MIN_PARALLEL,
    }
}

/// The outcome of one seed.
#[derive(Debug)]
pub struct SeedCheck {
    /// The seed.
    pub seed: u64,
    /// Every check that failed, in words (empty: the seed passed).
    pub failures: Vec<String>,
    /// The run's report.
    pub report: RunReport,
}

impl SeedCheck {
    /// Whether every check passed.
    pub fn ok(&self) -> bool {
        self.failures.is_empty()
    }
}

/// Runs `scenario` with `seed` and checks it (see the module docs).
pub fn check_seed(
    scenario: Scenario,
    seed: u64,
    nodes: u32,
    profile: NetProfile,
    tuning: Tuning,
) -> Result<SeedCheck, SimError> {
    let spec = spec_for(scenario, seed, nodes, profile, tuning);
    let config = profile.configure(nodes, &tuning);
    let bound = agreement_bound(&config).as_secs_f64();
    let out = run(&spec, None)?;
    let r = out.report;
    let mut failures = Vec::new();
    match r.convergence_s {
        Some(t) if t <= bound => {}
        Some(t) => failures.push(format!(
            "agreement {t:.2} s after the last operation, bound {bound:.1} s"
        )),
        None => failures.push(format!(
            "no agreement by the end ({:.1}% of views correct, slowest knows {})",
            r.converged_fraction * 100.0,
            r.slowest_node_members
        )),
    }
    failures.extend(r.audit_failure());
    if r.resurrections > 0 {
        failures.push(format!(
            "{} force-left nodes resurrected ({} MemberUp events)",
            r.resurrections, r.resurrection_events
        ));
    }
    if r.max_view_size > view_bound(nodes) {
        failures.push(format!(
            "a node held {} member records, more than the bound {} (other names plus its own previous identity)",
            r.max_view_size,
            view_bound(nodes)
        ));
    }
    if scenario == Scenario::Autoclean && r.records_of_gone_at_end > 0 {
        failures.push(format!(
            "{} records of the crashed node still held at the end (autoclean {:?} s)",
            r.records_of_gone_at_end, r.autoclean_s
        ));
    }
    if scenario == Scenario::LongPartition && r.records_across_at_heal.unwrap_or(0) > 0 {
        failures.push(format!(
            "{} records of the other side still held at the heal (autoclean {:?} s)",
            r.records_across_at_heal.unwrap_or(0),
            r.autoclean_s
        ));
    }
    Ok(SeedCheck {
        seed,
        failures,
        report: r,
    })
}

/// A one-line account of a seed.
pub fn describe(c: &SeedCheck) -> String {
    let mut s = String::new();
    let _ = write!(
        s,
        "seed {:>6}: {} ",
        c.seed,
        if c.ok() { "ok  " } else { "FAIL" }
    );
    match c.report.convergence_s {
        Some(t) => {
            let _ = write!(s, "agreed {t:>7.2} s after the last op");
        }
        None => {
            let _ = write!(s, "no agreement");
        }
    }
    let _ = write!(
        s,
        "; resurrections {}; max view {}",
        c.report.resurrections, c.report.max_view_size
    );
    if let Some(f) = c.report.forgotten_s {
        let _ = write!(s, "; forgotten after {f:.1} s");
    }
    for f in &c.failures {
        let _ = write!(s, "\n    {f}");
    }
    s
}
