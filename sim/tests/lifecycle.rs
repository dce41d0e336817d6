//! Lifecycle scenarios: force-leave, autoclean, a partition longer than
//! autoclean, and sync on or off. Small clusters, fast in debug.
//!
//! The force-leave and autoclean scenarios are played in a world that keeps
//! every event, so each test checks both what the report measures and what
//! every node holds and said.

use std::process::Command;
use std::time::Duration;

use rollcall::core::{Event, NodeName};
use rollcall_sim::run::{play, report as report_of};
use rollcall_sim::seeds::{agreement_bound, spec_for};
use rollcall_sim::{run, NetProfile, RunReport, Scenario, Tuning, World};

fn report(scenario: Scenario, nodes: u32, seed: u64) -> RunReport {
    let spec = spec_for(scenario, seed, nodes, NetProfile::Lan, Tuning::default());
    run(&spec, None).unwrap().report
}

/// Plays `scenario`'s seed run in a world that keeps every event; returns
/// the world at the end and the run's report.
fn played(scenario: Scenario, nodes: u32, seed: u64) -> (World, RunReport) {
    let spec = spec_for(scenario, seed, nodes, NetProfile::Lan, Tuning::default());
    let mut cfg = spec.world_config();
    cfg.keep_events = true;
    let mut world = World::new(&cfg).unwrap();
    let p = play(&mut world, &spec, None);
    let r = report_of(&spec, &world, p, 0.0);
    (world, r)
}

fn name(world: &World, i: u32) -> NodeName {
    world.peer(i).name
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
fn a_force_left_node_that_is_still_running_stays_removed_and_knows_it() {
    // Seeds 1 to 6 include runs where the victim is cut off alone first, so
    // it misses the notice and comes back asserting itself after the heal.
    let mut isolated = 0;
    for seed in 1..=6 {
        let (world, r) = played(Scenario::ForceLeave, 12, seed);
        isolated += usize::from(r.network.partitioned > 0);
        assert_eq!(r.resurrections, 0, "seed {seed}: {r}");
        assert!(r.converged, "seed {seed}: {r}");
        assert_eq!(r.live_nodes, 11, "the force-left node is out");
        assert_eq!(r.slowest_node_members, 10, "seed {seed}: {r}");
        let at = r
            .timeline
            .iter()
            .find(|m| m.what.contains("force-leaves"))
            .expect("a force-leave in the timeline")
            .at_s;
        let victim = (0..12).find(|&i| !world.measure().is_live(i)).unwrap();
        let gone = name(&world, victim);
        // Still running, and it knows it was removed.
        let node = world.node(victim).expect("the victim still runs");
        assert!(
            node.has_left(),
            "seed {seed}: n{victim} did not learn it was removed"
        );
        assert!(
            world.events().iter().any(|(_, i, e)| *i == victim
                && matches!(e, Event::NodeForceLeft(id) if id.name() == &gone)),
            "seed {seed}: n{victim} reported no NodeForceLeft about itself"
        );
        for i in (0..12).filter(|&i| i != victim) {
            assert_eq!(
                world.lists(i, victim),
                (false, false),
                "seed {seed}: n{i} lists n{victim}"
            );
        }
        let up_again = world.events().iter().filter(|(t, i, e)| {
            t.as_secs_f64() > at
                && *i != victim
                && matches!(e, Event::MemberUp(id) if id.name() == &gone)
        });
        assert_eq!(
            up_again.count(),
            0,
            "seed {seed}: n{victim} came back up somewhere"
        );
    }
    assert!(isolated > 0, "no seed isolated the victim first");
}

#[test]
fn autoclean_forgets_a_crashed_node_everywhere() {
    let (mut world, r) = played(Scenario::Autoclean, 12, 3);
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
    let crashed = r.crashes[0].node;
    let gone = name(&world, crashed);
    let live: Vec<u32> = world.running().collect();
    assert_eq!(live.len(), 11);
    for &i in &live {
        assert_eq!(
            world.lists(i, crashed),
            (false, false),
            "n{i} still lists n{crashed}"
        );
        assert_eq!(
            world.node(i).unwrap().membership().count(),
            10,
            "n{i} still holds a record of n{crashed}"
        );
        // Held stopped (down) first, then forgotten.
        let first = |f: &dyn Fn(&Event) -> bool| {
            world
                .events()
                .iter()
                .position(|(_, at, e)| *at == i && f(e))
        };
        let down = first(&|e| matches!(e, Event::MemberDown(id) if id.name() == &gone));
        let cleaned = first(&|e| *e == Event::NodeCleaned(gone.clone()));
        assert!(
            matches!((down, cleaned), (Some(d), Some(c)) if d < c),
            "n{i}: down at event {down:?}, cleaned at event {cleaned:?}"
        );
    }
    // Sync does not bring the forgotten record back.
    world.run_for(Duration::from_secs(60));
    for &i in &live {
        assert_eq!(
            world.node(i).unwrap().membership().count(),
            10,
            "n{i} took n{crashed}'s record back"
        );
    }
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
