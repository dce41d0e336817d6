//! Running a [`Plan`] in a [`World`]: form the cluster, apply the timeline,
//! measure, report.

use std::time::{Duration, Instant};

use rollcall::core::Time;

use crate::error::SimError;
use crate::measure::{CrashCause, CrashRecord, Mark};
use crate::network::NetProfile;
use crate::report::CauseDetection;
use crate::report::{peak_rss_mib, RunReport};
use crate::scenario::{Formation, Op, Plan};
use crate::tuning::Tuning;
use crate::world::{World, WorldConfig};

/// Everything one run needs.
#[derive(Clone, Debug)]
pub struct RunSpec {
    /// Nodes in the world.
    pub nodes: u32,
    /// The run's seed.
    pub seed: u64,
    /// Link timings and protocol profile.
    pub profile: NetProfile,
    /// Formation and timeline.
    pub plan: Plan,
    /// The scenario's name, for the report.
    pub label: String,
    /// The command that reproduces this run, for the report.
    pub reproduce: String,
    /// Keep the event log as text.
    pub keep_log: bool,
    /// After the last operation, stop as soon as every live view is correct
    /// (the sweep's liveness check) instead of running to the end.
    pub stop_when_converged: bool,
    /// Sync on or off (`--no-sync`). The autoclean comes from the plan.
    pub tuning: Tuning,
    /// Threads that handle the nodes of each window (`--threads`); the run
    /// is the same for every count.
    pub threads: usize,
    /// Windows with fewer wakeups than this stay on the calling thread
    /// (`--min-parallel`; [`crate::parallel::MIN_PARALLEL`] by default).
    /// The run is the same for every value.
    pub min_parallel: usize,
}

/// A finished run.
#[derive(Debug)]
pub struct Outcome {
    /// The measurements.
    pub report: RunReport,
    /// The convergence curve: (virtual seconds, fraction of correct views).
    pub samples: Vec<(f64, f64)>,
    /// The event log as text, when it was kept.
    pub log: Option<String>,
}

/// The spacing between node starts during formation: nodes start one after
/// another, each joining node 0. At most 5 s in all.
pub fn formation_stagger(nodes: u32) -> Duration {
    Duration::from_millis(2).min(Duration::from_secs(5) / nodes.max(1))
}

/// How long formation may take before the run goes on with incomplete views.
pub fn formation_limit(nodes: u32) -> Duration {
    formation_stagger(nodes) * nodes + Duration::from_secs(60)
}

/// Called with (virtual time now, virtual time the run is expected to end).
pub type Progress = Box<dyn FnMut(Time, Time) + Send>;

/// Applies one timeline operation to the world.
pub fn apply(world: &mut World, op: &Op, seeds: &[u32]) {
    let n = world.len();
    match op {
        Op::Start { node } | Op::Restart { node } => world.start(*node, seeds),
        Op::Crash { node } => world.crash(*node, true),
        Op::HostCrash { node } => world.crash(*node, false),
        Op::Partition { one_way, .. } => {
            if let Some(sides) = op.sides_of(n) {
                world.partition(sides, *one_way, &op.to_string());
            }
        }
        Op::Heal => world.heal(),
        Op::SetLoss { p } => world.net().set_loss(*p),
        Op::SetDuplicate { p } => world.net().set_duplicate(*p),
        Op::SetNodeLoss { node, p } => world.net().set_outbound_loss(*node, *p),
        Op::Slow { node, delay_ms } => world.set_slow(*node, Duration::from_millis(*delay_ms)),
        Op::Unslow { node } => world.set_slow(*node, Duration::ZERO),
        Op::ForceLeave { by, node } => world.force_leave(*by, *node),
    }
}

/// Forms the cluster by joining ([`Formation::Joined`]): node `i` starts at `i × stagger` and joins
/// node 0, with sync on or off alike (like for like: with sync off, plain
/// foca disseminates by piggybacking only and may not complete a large
/// view; the report's `formed` says so). Then the world runs until every
/// view is complete or [`formation_limit`] passes. Returns whether views
/// are complete.
pub fn form(world: &mut World) -> bool {
    let n = world.len();
    let stagger = formation_stagger(n);
    for i in 0..n {
        world.run_until(Time::ZERO + stagger * i);
        world.start(i, &[0]);
    }
    let limit = Time::ZERO + formation_limit(n);
    world.run_while(limit, |w| w.measure().all_correct())
}

/// A world of `cfg`'s nodes formed by joining ([`form`]), every view
/// complete: the start of tests and examples that begin with a cluster.
pub fn joined(cfg: &WorldConfig) -> Result<World, SimError> {
    let mut world = World::new(cfg)?;
    if form(&mut world) {
        Ok(world)
    } else {
        Err(SimError::NotFormed {
            nodes: cfg.nodes,
            limit_s: formation_limit(cfg.nodes).as_secs_f64(),
        })
    }
}

/// Starts every node at once and has each take every other as alive
/// (`Node::restore_members`, [`Formation::Restored`]): complete views with no join exchange, so
/// even 10,000 nodes start without a join storm. Returns whether views are
/// complete (they are at once, unless the core refused a record).
pub fn restore(world: &mut World) -> bool {
    for i in 0..world.len() {
        world.start(i, &[]);
    }
    world.restore_all();
    world.run_while(Time::ZERO + Duration::from_secs(1), |w| {
        w.measure().all_correct()
    })
}

impl RunSpec {
    /// The world this run takes place in: its nodes, seed, profile, log,
    /// tuning, and the plan's autoclean, seeds (the static discovery list)
    /// and replicants.
    pub fn world_config(&self) -> WorldConfig {
        let mut cfg = WorldConfig::new(self.nodes, self.seed, self.profile);
        cfg.keep_log = self.keep_log;
        cfg.tuning = self.tuning;
        if let Some(a) = self.plan.autoclean {
            cfg.tuning.autoclean = Some(Duration::from_secs_f64(a));
        }
        cfg.discovery_seeds = self.plan.seeds.clone();
        cfg.replicants = self.plan.replicants.clone();
        cfg.threads = self.threads;
        cfg.min_parallel = self.min_parallel;
        cfg
    }
}

/// How a played run went, for its report.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Played {
    /// Whether formation reached complete views (true without formation).
    pub formed: bool,
    /// When the timeline started.
    pub t0: Time,
}

/// Runs `spec` to the end and reports.
pub fn run(spec: &RunSpec, progress: Option<Progress>) -> Result<Outcome, SimError> {
    spec.plan.validate(spec.nodes)?;
    let wall = Instant::now();
    let mut world = World::new(&spec.world_config())?;
    let played = play(&mut world, spec, progress);
    let report = report(spec, &world, played, wall.elapsed().as_secs_f64());
    Ok(Outcome {
        samples: world.measure().samples().to_vec(),
        log: world.log().text().map(str::to_owned),
        report,
    })
}

/// Plays `spec`'s plan in `world` (built from [`RunSpec::world_config`],
/// perhaps keeping events too): forms the cluster, applies the timeline and
/// runs to the end. [`run`] is this and [`report`]; tests that look into
/// the nodes afterwards call it themselves. The plan must be valid for the
/// world's nodes ([`Plan::validate`], which `run` checks).
pub fn play(world: &mut World, spec: &RunSpec, mut progress: Option<Progress>) -> Played {
    let duration = Duration::from_secs_f64(spec.plan.duration);
    if let Some(p) = progress.as_mut() {
        let guess = Time::ZERO + duration + formation_limit(spec.nodes) / 4;
        p(Time::ZERO, guess);
    }
    let (formed, t0) = match spec.plan.formation {
        Formation::Joined | Formation::Restored => {
            let formed = if spec.plan.formation == Formation::Restored {
                restore(world)
            } else {
                form(world)
            };
            // Start the timeline on a whole second, a little after formation.
            let secs = (world.now().as_secs_f64() + 1.0).ceil();
            (formed, Time::from_secs_f64(secs))
        }
        Formation::None => (true, Time::ZERO),
    };
    let end = t0 + duration;
    if let Some(mut p) = progress {
        world.set_progress(Box::new(move |now| p(now, end)));
    }
    world.run_until(t0);
    for t in &spec.plan.ops {
        world.run_until(t0 + Duration::from_secs_f64(t.at));
        apply(world, &t.op, &spec.plan.seeds);
        world.mark(t.op.to_string());
    }
    if spec.stop_when_converged {
        world.run_while(end, |w| w.measure().all_correct());
    } else {
        world.run_until(end);
    }
    Played { formed, t0 }
}

/// The report of `spec` played in `world` ([`play`]), `wall_s` wall seconds
/// after it started.
pub fn report(spec: &RunSpec, world: &World, played: Played, wall_s: f64) -> RunReport {
    let Played { formed, t0 } = played;
    let m = world.measure();
    let totals = world.totals();
    let last = m.last_mark().unwrap_or(t0);
    let convergence_s = m
        .all_correct_since()
        .map(|since| since.saturating_since(last).as_secs_f64());
    let detected: Vec<_> = m
        .crashes()
        .iter()
        .filter(|c| !c.restarted_before_detection)
        .collect();
    let worst_of = |of: &[&CrashRecord], f: fn(&CrashRecord) -> Option<f64>| {
        if of.is_empty() || of.iter().any(|c| f(c).is_none()) {
            None
        } else {
            of.iter().filter_map(|c| f(c)).reduce(f64::max)
        }
    };
    let worst = |f: fn(&CrashRecord) -> Option<f64>| worst_of(&detected, f);
    let detection_by_cause: Vec<CauseDetection> = [CrashCause::Process, CrashCause::Host]
        .into_iter()
        .filter_map(|cause| {
            let of: Vec<&CrashRecord> = detected
                .iter()
                .copied()
                .filter(|c| c.cause == cause)
                .collect();
            (!of.is_empty()).then(|| CauseDetection {
                cause,
                crashes: of.len(),
                first_s: worst_of(&of, |c| c.first_down_s),
                all_s: worst_of(&of, |c| c.all_down_s),
            })
        })
        .collect();
    let slowest = world
        .running()
        .filter(|&i| m.is_live(i))
        .filter_map(|i| world.node(i).map(|n| n.num_members() as u64))
        .min()
        .unwrap_or(0);
    let audit = world.audit();
    let (resurrections, resurrection_events) = m.resurrections();
    let records_of_gone = audit.records_of_gone(world.nodes(), m);
    // Autoclean: from each crash of a node still down to the last node
    // forgetting it, once no live node holds it any more.
    let gone: Vec<_> = m.crashes().iter().filter(|c| !m.is_live(c.node)).collect();
    let forgotten_s = if records_of_gone == 0 && !gone.is_empty() {
        gone.iter()
            .map(|c| m.last_cleaned(c.node).map(|t| t.as_secs_f64() - c.at_s))
            .try_fold(0.0f64, |acc, x| x.map(|x| acc.max(x)))
    } else {
        None
    };
    let per_node_s = |x: u64| {
        if totals.node_seconds > 0.0 {
            x as f64 / totals.node_seconds
        } else {
            0.0
        }
    };
    let timeline: Vec<Mark> = m
        .marks()
        .filter(|mk| !mk.what.starts_with("start "))
        .cloned()
        .collect();
    RunReport {
        seed: spec.seed,
        nodes: spec.nodes,
        scenario: spec.label.clone(),
        profile: spec.profile.to_string(),
        formed,
        formation_s: match spec.plan.formation {
            Formation::Joined | Formation::Restored => t0.as_secs_f64(),
            Formation::None => 0.0,
        },
        converged: m.all_correct(),
        convergence_s,
        converged_fraction: m.fraction(),
        slowest_node_members: slowest,
        live_nodes: m.live_count(),
        detect_first_s: worst(|c| c.first_down_s),
        detect_all_s: worst(|c| c.all_down_s),
        crashes: m.crashes().to_vec(),
        detection_by_cause,
        false_positives: m.false_positives(),
        false_down_events: m.false_down_events(),
        false_down_causes: m.false_down_causes(),
        datagrams_per_node_s: per_node_s(totals.datagrams_sent),
        bytes_per_node_s: per_node_s(totals.bytes_sent),
        sync_datagrams_per_node_s: per_node_s(totals.sync_datagrams_sent),
        sync_bytes_per_node_s: per_node_s(totals.sync_bytes_sent),
        gossip_bytes_per_node_s: per_node_s(totals.bytes_sent - totals.sync_bytes_sent),
        sync_records_received: totals.sync_records_received,
        sync_records_unchanged: totals.sync_records_unchanged,
        sync: spec.tuning.sync,
        network_evidence: spec.tuning.network_evidence,
        lifeguard: spec.tuning.lifeguard,
        probes_failed: totals.probes_failed,
        autoclean_s: world.config().autoclean.map(|d| d.as_secs_f64()),
        resurrections,
        resurrection_events,
        max_view_size: audit.max_view_size(world.nodes()),
        view_size_at_end: audit.view_size_now(world.nodes(), m),
        records_of_gone_at_end: records_of_gone,
        forgotten_s,
        records_across_at_heal: audit.records_across_at_heal(),
        virtual_s: world.now().as_secs_f64(),
        wall_s,
        node_seconds_per_wall_s: if wall_s > 0.0 {
            totals.node_seconds / wall_s
        } else {
            0.0
        },
        peak_rss_mib: peak_rss_mib(),
        steps: totals.steps,
        events: world.log().len(),
        event_log_hash: format!("{:016x}", world.log().hash()),
        threads: world.threads(),
        events_per_window: {
            let (windows, items) = world.windows();
            if windows > 0 {
                items as f64 / windows as f64
            } else {
                0.0
            }
        },
        thread_bounds: crate::parallel::BOUND_THREADS
            .iter()
            .filter_map(|&t| Some((t, world.spread().bound(t, wall_s)?)))
            .collect(),
        guessed_bound: world.spread().guessed_bound(wall_s),
        node_work_s: world.spread().node_seconds(),
        timeline,
        partitions: m.partitions().to_vec(),
        network: world.network().stats(),
        datagrams_dropped: totals.datagrams_dropped,
        views_audited: audit.corrected(),
        first_view_audit: audit.first().map(|(i, t)| (i, t.as_secs_f64())),
        reproduce: spec.reproduce.clone(),
    }
}
