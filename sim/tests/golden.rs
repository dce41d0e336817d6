//! Golden runs: the event-log hash of a few small runs, pinned.
//!
//! A seed must mean the same run in every build: on another machine, after a
//! `cargo update`, after a refactor that should not change behaviour. Every
//! node and foca draw from `rollcall::core::SeedRng`, a named generator with
//! a documented value-stable stream, and the simulator's own streams come
//! from `rollcall_sim::rng`; these hashes check the whole chain end to end.
//!
//! A changed hash means the runs behave differently. That is allowed only as
//! a deliberate, reviewed change: update the constant in the same commit that
//! explains why the behaviour changed. Run the test with `--nocapture` to see
//! every run's hash and event count.

use rollcall_sim::scenario::Knobs;
use rollcall_sim::{run, NetProfile, RunSpec, Scenario, Tuning};

/// One pinned run and what it must produce.
struct Golden {
    scenario: Scenario,
    nodes: u32,
    seed: u64,
    /// Virtual seconds.
    duration: f64,
    /// Entries in the event log.
    events: u64,
    /// The event log's hash, as the report prints it.
    hash: &'static str,
}

/// Pinned since the window-parallel event loop (`src/parallel.rs`): every
/// network decision draws from its sender's own stream, and a window's
/// wakeups are handled node by node and merged in (time, node) order, so
/// that a run is the same for every thread count.
///
/// Formation by joining (node seeds, foca's probe and gossip choices),
/// a partition and its heal (autoheal's rejoin reseeds foca, sync sessions),
/// and churn (crashes, restarts with fresh node seeds, the scenario stream).
const GOLDEN: [Golden; 3] = [
    Golden {
        scenario: Scenario::Join,
        nodes: 50,
        seed: 1,
        duration: 60.0,
        events: 2600,
        hash: "ad0faf45c8c31cc8",
    },
    Golden {
        scenario: Scenario::PartitionHeal,
        nodes: 30,
        seed: 2,
        duration: 90.0,
        events: 2327,
        hash: "913d2a459bd12bd4",
    },
    Golden {
        scenario: Scenario::Churn,
        nodes: 30,
        seed: 3,
        duration: 90.0,
        events: 2193,
        hash: "acd8d959f1a448b3",
    },
];

fn spec(g: &Golden) -> RunSpec {
    let cfg = NetProfile::Lan.config(g.nodes);
    RunSpec {
        nodes: g.nodes,
        seed: g.seed,
        profile: NetProfile::Lan,
        plan: g
            .scenario
            .plan(g.nodes, g.seed, Some(g.duration), Knobs::default(), &cfg),
        label: g.scenario.to_string(),
        reproduce: format!(
            "rollcall-sim run --nodes {} --seed {} --scenario {} --duration {}",
            g.nodes, g.seed, g.scenario, g.duration
        ),
        keep_log: false,
        stop_when_converged: false,
        tuning: Tuning::default(),
        threads: 1,
        min_parallel: rollcall_sim::parallel::MIN_PARALLEL,
    }
}

#[test]
fn pinned_seeds_still_produce_their_pinned_event_logs() {
    let mut changed = vec![];
    for g in &GOLDEN {
        let spec = spec(g);
        let r = match run(&spec, None) {
            Ok(out) => out.report,
            Err(e) => {
                changed.push(format!("{}: the run failed: {e}", spec.reproduce));
                continue;
            }
        };
        println!(
            "{}: {} events, hash {}",
            spec.reproduce, r.events, r.event_log_hash
        );
        if r.event_log_hash != g.hash || r.events != g.events {
            changed.push(format!(
                "{}: {} events, hash {} (pinned: {} events, hash {})",
                spec.reproduce, r.events, r.event_log_hash, g.events, g.hash
            ));
        }
    }
    assert!(
        changed.is_empty(),
        "a pinned run's event log changed, so the simulated cluster behaves \
         differently for the same seed. If that is intended, it must be a \
         deliberate, reviewed diff: update the constants in sim/tests/golden.rs \
         in the commit that explains why behaviour changed. If it is not \
         intended (a dependency update, a refactor), find what changed.\n{}",
        changed.join("\n")
    );
}
