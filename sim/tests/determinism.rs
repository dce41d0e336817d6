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
