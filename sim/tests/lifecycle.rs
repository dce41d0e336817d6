//! Lifecycle scenarios: force-leave, autoclean, a partition longer than
//! autoclean, and sync on or off. Small clusters, fast in debug.

use std::process::Command;

use rollcall_sim::seeds::{agreement_bound, spec_for};
use rollcall_sim::{run, NetProfile, RunReport, Scenario, Tuning};

fn report(scenario: Scenario, nodes: u32, seed: u64) -> RunReport {
    let spec = spec_for(scenario, seed, nodes, NetProfile::Lan, Tuning::default());
    run(&spec, None).unwrap().report
}

fn sim_json(args: &[&str]) -> serde_json::Value {
    let out = Command::new(env!("CARGO_BIN_EXE_rollcall-sim"))
        .args(args)
        .arg("--json")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn no_sync_flag_turns_sync_traffic_off() {
    let base = [
        "run",
        "--nodes",
        "10",
        "--scenario",
        "crash",
        "--duration",
        "30",
    ];
    let on = sim_json(&base);
    let off = sim_json(&[&base[..], &["--no-sync"]].concat());
    assert_eq!(on["sync"], true);
    assert_eq!(off["sync"], false);
    assert!(on["sync_bytes_per_node_s"].as_f64().unwrap() > 0.0, "{on}");
    assert_eq!(off["sync_bytes_per_node_s"].as_f64().unwrap(), 0.0, "{off}");
    assert_eq!(off["sync_datagrams_per_node_s"].as_f64().unwrap(), 0.0);
    let gossip = off["gossip_bytes_per_node_s"].as_f64().unwrap();
    assert_eq!(gossip, off["bytes_per_node_s"].as_f64().unwrap());
    assert!(gossip > 0.0);
    assert!(off["reproduce"].as_str().unwrap().contains("--no-sync"));
}

#[test]
fn a_force_left_node_never_reappears() {
    // Seeds 1 to 6 include runs where the victim is cut off alone first, so
    // it misses the notice and comes back asserting itself after the heal.
    let mut isolated = 0;
    for seed in 1..=6 {
        let r = report(Scenario::ForceLeave, 12, seed);
        isolated += usize::from(r.network.partitioned > 0);
        assert_eq!(r.resurrections, 0, "seed {seed}: {r}");
        assert!(r.converged, "seed {seed}: {r}");
        assert_eq!(r.live_nodes, 11, "the force-left node is out");
        assert_eq!(r.slowest_node_members, 10, "seed {seed}: {r}");
    }
    assert!(isolated > 0, "no seed isolated the victim first");
}

#[test]
fn autoclean_forgets_a_crashed_node_everywhere() {
    let r = report(Scenario::Autoclean, 12, 3);
    assert_eq!(r.autoclean_s, Some(Scenario::SHORT_AUTOCLEAN_S));
    assert!(r.converged, "{r}");
    assert_eq!(r.records_of_gone_at_end, 0, "{r}");
    assert_eq!(
        r.view_size_at_end, 10,
        "only the 10 other live nodes remain"
    );
    let forgotten = r.forgotten_s.expect("every node reported NodeCleaned");
    // Down after detection, forgotten autoclean later, within a sweep
    // (autoclean / 20) and a sync round.
    assert!(
        (60.0..=60.0 + 20.0).contains(&forgotten),
        "forgotten {forgotten} s after the crash"
    );
}

#[test]
fn a_partition_longer_than_autoclean_heals_through_discovery() {
    let r = report(Scenario::LongPartition, 12, 4);
    assert_eq!(
        r.records_across_at_heal,
        Some(0),
        "each side forgot the other before the heal: {r}"
    );
    let bound = agreement_bound(&NetProfile::Lan.config(12)).as_secs_f64();
    let after = r.convergence_s.expect("the sides merge again");
    assert!(after <= bound, "{after} s after the heal, bound {bound} s");
    assert_eq!(r.live_nodes, 12);
    assert_eq!(r.slowest_node_members, 11);
    assert_eq!(r.resurrections, 0);
}

#[test]
fn the_lifecycle_scenarios_are_deterministic() {
    for scenario in [
        Scenario::ForceLeave,
        Scenario::Autoclean,
        Scenario::LongPartition,
    ] {
        let mut spec = spec_for(scenario, 9, 10, NetProfile::Lan, Tuning::default());
        spec.keep_log = true;
        let a = run(&spec, None).unwrap();
        let b = run(&spec, None).unwrap();
        assert_eq!(a.report.event_log_hash, b.report.event_log_hash);
        assert_eq!(a.log, b.log, "{scenario}: the logs differ");
        assert_eq!(a.samples, b.samples);
    }
}

#[test]
fn a_restored_formation_starts_with_complete_views_at_once() {
    // autoclean forms by joining unless told otherwise.
    let v = sim_json(&[
        "run",
        "--nodes",
        "40",
        "--scenario",
        "autoclean",
        "--formation",
        "restored",
        "--duration",
        "30",
    ]);
    assert_eq!(v["formed"], true, "{v}");
    assert!(v["formation_s"].as_f64().unwrap() <= 1.0, "{v}");
    assert!(
        v["reproduce"]
            .as_str()
            .unwrap()
            .contains("--formation restored"),
        "{v}"
    );
    assert_eq!(v["converged"], true, "{v}");
    assert!(v["detect_all_s"].as_f64().is_some(), "{v}");
}
