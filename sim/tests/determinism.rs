//! Same seed, same run: the event log is identical byte for byte.

use rollcall_sim::scenario::Knobs;
use rollcall_sim::{run, NetProfile, RunSpec, Scenario, Tuning};

fn spec(seed: u64, scenario: Scenario) -> RunSpec {
    let cfg = NetProfile::Lan.config(16);
    RunSpec {
        nodes: 16,
        seed,
        profile: NetProfile::Lan,
        plan: scenario.plan(16, seed, Some(60.0), Knobs::default(), &cfg),
        label: scenario.to_string(),
        reproduce: String::new(),
        keep_log: true,
        stop_when_converged: false,
        tuning: Tuning::default(),
        threads: 1,
        min_parallel: rollcall_sim::parallel::MIN_PARALLEL,
    }
}

#[test]
fn same_seed_gives_identical_event_logs() {
    for scenario in [Scenario::Churn, Scenario::Loss] {
        let a = run(&spec(42, scenario), None).unwrap();
        let b = run(&spec(42, scenario), None).unwrap();
        assert_eq!(a.report.event_log_hash, b.report.event_log_hash);
        assert_eq!(a.log, b.log, "{scenario}: the logs differ");
        assert!(a.report.events > 100);
        assert_eq!(a.report.steps, b.report.steps);
        assert_eq!(a.samples, b.samples);
    }
}

#[test]
fn different_seeds_give_different_event_logs() {
    let a = run(&spec(1, Scenario::Churn), None).unwrap();
    let b = run(&spec(2, Scenario::Churn), None).unwrap();
    assert_ne!(a.report.event_log_hash, b.report.event_log_hash);
}

/// Runs `spec` on `threads` threads, every window with at least two
/// wakeups handed to the pool (so small worlds exercise it too).
fn on_threads(spec: &RunSpec, threads: usize) -> (String, u64, u64, Vec<(f64, f64)>) {
    let mut cfg = spec.world_config();
    cfg.threads = threads;
    cfg.min_parallel = 2;
    let mut world = rollcall_sim::World::new(&cfg).unwrap();
    let played = rollcall_sim::run::play(&mut world, spec, None);
    let r = rollcall_sim::run::report(spec, &world, played, 0.0);
    assert_eq!(r.threads, threads);
    (
        r.event_log_hash,
        r.events,
        r.steps,
        world.measure().samples().to_vec(),
    )
}

#[test]
fn every_thread_count_gives_the_event_log_of_one_thread() {
    for (scenario, nodes) in [
        (Scenario::Join, 50),
        (Scenario::Crash, 40),
        (Scenario::PartitionHeal, 30),
        (Scenario::Partition3, 30),
        (Scenario::Loss, 40),
        (Scenario::Churn, 30),
    ] {
        let cfg = NetProfile::Lan.config(nodes);
        let spec = RunSpec {
            nodes,
            seed: 5,
            profile: NetProfile::Lan,
            plan: scenario.plan(nodes, 5, None, Knobs::default(), &cfg),
            label: scenario.to_string(),
            reproduce: String::new(),
            keep_log: false,
            stop_when_converged: false,
            tuning: Tuning::default(),
            threads: 1,
            min_parallel: rollcall_sim::parallel::MIN_PARALLEL,
        };
        // The plain sequential run: one thread, the default threshold.
        let plain = run(&spec, None).unwrap().report;
        assert!(plain.events > 100, "{scenario}: {} events", plain.events);
        let one = on_threads(&spec, 1);
        assert_eq!(one.0, plain.event_log_hash, "{scenario}");
        for threads in [2, 4, 8] {
            let many = on_threads(&spec, threads);
            assert_eq!(
                many.0, one.0,
                "{scenario}, {threads} threads: the hashes differ"
            );
            assert_eq!(
                many.1, one.1,
                "{scenario}, {threads} threads: the event counts differ"
            );
            assert_eq!(
                many.2, one.2,
                "{scenario}, {threads} threads: the step counts differ"
            );
            assert_eq!(
                many.3, one.3,
                "{scenario}, {threads} threads: the curves differ"
            );
        }
    }
}
