//! Leave, force-leave and autoheal between real `Node`s on the simulator's
//! in-memory network (`rollcall_sim::World`, every link 1 ms): what each
//! node lists, reports and refuses. The force-leave, autoclean and
//! long-partition scenarios, measured across seeds, are in
//! `sim/tests/lifecycle.rs`.

use std::time::Duration;

use rollcall::core::{Command, Event, NodeName, Time};
use rollcall_sim::audit::views_agree;
use rollcall_sim::run::joined;
use rollcall_sim::{World, WorldConfig};

fn name(world: &World, i: u32) -> NodeName {
    world.peer(i).name
}

/// Runs until every node's view holds every other node, for at most `d`.
fn agree_within(world: &mut World, d: Duration) -> bool {
    let end = world.now() + d;
    world.run_while(end, views_agree)
}

#[test]
fn a_node_that_leaves_is_in_neither_list_on_every_other_node_within_a_second() {
    let mut world = joined(&WorldConfig::plain(8)).unwrap();
    world.command(3, Command::Leave).unwrap().unwrap();
    world.run_for(Duration::from_secs(1));
    let gone = name(&world, 3);
    for i in (0..8).filter(|&i| i != 3) {
        assert_eq!(world.lists(i, 3), (false, false), "n{i} still lists n3");
        assert!(
            world
                .events()
                .iter()
                .any(|(_, at, e)| *at == i
                    && matches!(e, Event::MemberLeft(id) if id.name() == &gone)),
            "n{i} reported no MemberLeft"
        );
    }
    // And it stays so: nothing brings it back.
    world.run_for(Duration::from_secs(60));
    for i in (0..8).filter(|&i| i != 3) {
        assert_eq!(world.lists(i, 3), (false, false), "n{i} lists n3 again");
    }
}

#[test]
fn a_force_left_node_comes_back_by_restarting() {
    let mut world = joined(&WorldConfig::plain(6)).unwrap();
    world.force_leave(0, 2);
    world.run_for(Duration::from_secs(10));
    assert!(world.node(2).unwrap().has_left());
    // A restart: the same name, the next generation, a fresh state.
    world.crash(2, false);
    world.start(2, &[1]);
    assert!(
        agree_within(&mut world, Duration::from_secs(30)),
        "the restarted node was not taken back"
    );
}

/// Cuts the network into `sides` (each node's side), holds the cut for
/// `apart`, lifts it, and returns how long the views then took to agree,
/// if they did within 60 s.
fn partition_and_heal(world: &mut World, sides: Vec<u16>, apart: Duration) -> Option<Duration> {
    world.partition(sides, false, "sides");
    world.run_for(apart);
    world.heal();
    let lifted = world.now();
    agree_within(world, Duration::from_secs(60)).then(|| world.now() - lifted)
}

fn rejoined_lost(world: &World, i: u32, after: Time) -> bool {
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
fn two_halves_merge_after_a_partition_and_only_the_losing_half_rejoins() {
    let mut world = joined(&WorldConfig::plain(6)).unwrap();
    let t0 = world.now();
    let halves = vec![0, 0, 0, 1, 1, 1];
    let took = partition_and_heal(&mut world, halves, Duration::from_secs(60));
    assert!(took.is_some(), "the halves did not merge within 60 s");
    // Equal halves: the half holding the lowest name (n0) wins.
    for i in 0..3 {
        assert!(!rejoined_lost(&world, i, t0), "winner n{i} rejoined");
    }
    for i in 3..6 {
        assert!(
            rejoined_lost(&world, i, t0),
            "loser n{i} did not report Rejoined"
        );
    }
    assert!(world
        .events()
        .iter()
        .any(|(_, _, e)| matches!(e, Event::PartitionDetected { .. })));
    // A renewed node holds no record of its own earlier identity.
    for (i, node) in world.nodes() {
        let s = node.status();
        assert!(
            s.stopped_nodes.is_empty(),
            "n{i} lists stopped nodes: {s:?}"
        );
        let me = name(&world, i);
        assert!(node.membership().all(|m| m.id().name() != &me));
    }
}

#[test]
fn with_autoheal_off_the_sides_stay_apart_until_a_manual_join() {
    let mut cfg = WorldConfig::plain(6);
    cfg.tuning.autoheal = false;
    let mut world = joined(&cfg).unwrap();
    let halves = vec![0, 0, 0, 1, 1, 1];
    let healed = partition_and_heal(&mut world, halves, Duration::from_secs(60));
    assert!(healed.is_none(), "the sides merged with autoheal off");
    let seed = world.peer(0);
    for i in 3..6 {
        let join = Command::Join(vec![seed.clone()]);
        assert!(
            world.command(i, join).unwrap().is_err(),
            "n{i} joined while in a cluster"
        );
        world.command(i, Command::Leave).unwrap().unwrap();
        world
            .command(i, Command::Join(vec![seed.clone()]))
            .unwrap()
            .unwrap();
    }
    assert!(
        agree_within(&mut world, Duration::from_secs(60)),
        "manual joins did not merge"
    );
}
