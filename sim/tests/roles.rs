//! Roles in the simulator: core nodes and replicants. A replicant starts
//! through discovery (it refuses an explicit join), and autoheal counts
//! core nodes first: the side with more of them wins a partition, however
//! small, and a side of replicants alone never wins.

use std::time::Duration;

use rollcall::core::{Command, CommandError, Event, Role, Time};
use rollcall_sim::audit::views_agree;
use rollcall_sim::run::{joined, play, report as report_of};
use rollcall_sim::scenario::Plan;
use rollcall_sim::seeds::{check_seed, spec_for};
use rollcall_sim::{NetProfile, RunSpec, Scenario, Tuning, World, WorldConfig};

/// Whether node `i` reported that its side lost a partition after `after`.
fn lost(world: &World, i: u32, after: Time) -> bool {
    world.events().iter().any(|(t, at, e)| {
        *t >= after
            && *at == i
            && matches!(
                e,
                Event::Rejoined {
                    lost_partition: true,
                    ..
                }
            )
    })
}

#[test]
fn the_smaller_side_with_more_core_nodes_wins_and_keeps_its_identities() {
    const NODES: u32 = 20;
    let (small, large) = Scenario::role_sides(NODES);
    for seed in 1..=4 {
        let spec = spec_for(
            Scenario::PartitionRoles,
            seed,
            NODES,
            NetProfile::Lan,
            Tuning::default(),
        );
        let mut cfg = spec.world_config();
        cfg.keep_events = true;
        let mut world = World::new(&cfg).unwrap();
        let played = play(&mut world, &spec, None);
        let r = report_of(&spec, &world, played, 0.0);
        assert!(r.converged, "seed {seed}: {r}");
        assert_eq!(r.views_audited, 0, "seed {seed}: {r}");
        assert_eq!(r.false_positives, 0, "seed {seed}: false downs\n{r}");
        assert_eq!(world.role(large[0]), Role::Core);
        assert!(large[1..].iter().all(|&i| world.role(i) == Role::Replicant));
        for &i in &small {
            let id = world.node(i).unwrap().identity();
            assert_eq!(
                (id.role(), id.renewal()),
                (Role::Core, 0),
                "seed {seed}: winner n{i} renewed"
            );
            assert!(!lost(&world, i, Time::ZERO), "seed {seed}: n{i} lost");
        }
        for &i in &large {
            let id = world.node(i).unwrap().identity();
            assert!(id.renewal() > 0, "seed {seed}: loser n{i} kept {id:?}");
            assert!(lost(&world, i, Time::ZERO), "seed {seed}: n{i} never lost");
        }
        // Every node ends knowing every other node's role.
        let status = world.node(large[1]).unwrap().status();
        assert_eq!(status.running_nodes.len(), NODES as usize, "{status}");
        assert!(!status.no_core_running);
        let cores = status.roles.values().filter(|r| r.is_core()).count();
        assert_eq!(cores, small.len() + 1);
    }
}

#[test]
fn the_scenario_file_names_its_replicants_and_its_core_side_wins() {
    let path = format!(
        "{}/scenarios/partition-roles.toml",
        env!("CARGO_MANIFEST_DIR")
    );
    let plan = Plan::from_toml(&std::fs::read_to_string(path).unwrap(), 20).unwrap();
    assert_eq!(plan.replicants, (7..20).collect::<Vec<u32>>());
    let spec = RunSpec {
        nodes: 20,
        seed: 7,
        profile: NetProfile::Lan,
        plan,
        label: "partition-roles.toml".into(),
        reproduce: String::new(),
        keep_log: false,
        stop_when_converged: false,
        tuning: Tuning::default(),
        threads: 1,
        min_parallel: rollcall_sim::parallel::MIN_PARALLEL,
    };
    let mut world = World::new(&spec.world_config()).unwrap();
    let played = play(&mut world, &spec, None);
    let r = report_of(&spec, &world, played, 0.0);
    assert!(r.converged, "{r}");
    assert_eq!((r.views_audited, r.false_positives), (0, 0), "{r}");
    for i in 0..20 {
        let renewed = world.node(i).unwrap().identity().renewal() > 0;
        assert_eq!(renewed, i >= 6, "n{i}");
    }
}

#[test]
fn partition_roles_passes_the_seeds_check() {
    for seed in 1..=10 {
        let c = check_seed(
            Scenario::PartitionRoles,
            seed,
            12,
            NetProfile::Lan,
            Tuning::default(),
        )
        .unwrap();
        assert!(c.ok(), "seed {seed}: {}", c.failures.join("; "));
    }
}

#[test]
fn a_side_of_replicants_alone_rejoins_a_single_core_node() {
    // Node 0 is the one core node; nodes 1-9 are replicants, started
    // through discovery of node 0.
    let mut cfg = WorldConfig::plain(10);
    cfg.replicants = (1..10).collect();
    let mut world = joined(&cfg).unwrap();
    let sides = (0..10).map(|i| u16::from(i > 0)).collect();
    world.partition(sides, false, "the core node alone");
    world.run_for(Duration::from_secs(35));
    world.heal();
    let lifted = world.now();
    let end = lifted + Duration::from_secs(10);
    assert!(world.run_while(end, views_agree), "not merged");
    assert_eq!(world.node(0).unwrap().identity().renewal(), 0);
    assert!(!lost(&world, 0, lifted), "the core node lost");
    assert!((1..10).all(|i| lost(&world, i, lifted)));
    // No identity still running was declared down. (The lone core node
    // may still be finishing its own slow detection of the replicants'
    // old identities at the lift: see ALGORITHM.md, "Lifeguard".)
    let live: Vec<_> = (0..10)
        .map(|i| world.node(i).unwrap().identity().clone())
        .collect();
    let false_downs: Vec<_> = world
        .events()
        .iter()
        .filter(|(t, _, e)| {
            *t >= lifted
                && matches!(e, Event::MemberDown(id)
                    if live.iter().any(|l| l == id))
        })
        .collect();
    assert!(false_downs.is_empty(), "{false_downs:?}");
}

#[test]
fn a_replicant_refuses_an_explicit_join_in_the_world_too() {
    let mut cfg = WorldConfig::plain(3);
    cfg.replicants = vec![2];
    let mut world = joined(&cfg).unwrap();
    world.command(2, Command::Leave).unwrap().unwrap();
    let peer = world.peer(0);
    assert_eq!(
        world.command(2, Command::Join(vec![peer])),
        Some(Err(CommandError::ReplicantJoin))
    );
}
