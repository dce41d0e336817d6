//! Leave, force-leave, autoclean and autoheal between real `Node`s on an
//! in-memory network.

mod support;

use std::time::Duration;

use rollcall::core::{Command, Config, Event, NodeName, Time};
use support::memnet::MemNet;

fn converged(n: usize, config: Config) -> MemNet {
    MemNet::converged_cluster(n, config)
}

fn name(i: usize) -> NodeName {
    format!("rc{i}@127.0.0.1").parse().unwrap()
}

fn listed(net: &MemNet, at: usize, who: usize) -> (bool, bool) {
    let s = net.nodes[at].status();
    (
        s.running_nodes.contains(&name(who)),
        s.stopped_nodes.contains(&name(who)),
    )
}

#[test]
fn a_node_that_leaves_is_in_neither_list_on_every_other_node_within_a_second() {
    let mut net = converged(8, Config::lan(8));
    let now = net.now;
    net.nodes[3].handle_command(now, Command::Leave).unwrap();
    net.drain(3);
    net.run_for(Duration::from_secs(1));
    for i in (0..8).filter(|&i| i != 3) {
        assert_eq!(
            listed(&net, i, 3),
            (false, false),
            "node {i} still lists rc3"
        );
        assert!(
            net.events.iter().any(|(_, at, e)| *at == i
                && matches!(e, Event::MemberLeft(id) if id.name() == &name(3))),
            "node {i} reported no MemberLeft"
        );
    }
    // And it stays so: nothing brings it back.
    net.run_for(Duration::from_secs(60));
    for i in (0..8).filter(|&i| i != 3) {
        assert_eq!(
            listed(&net, i, 3),
            (false, false),
            "node {i} lists rc3 again"
        );
    }
}

#[test]
fn a_force_left_node_that_is_still_running_stays_removed_and_knows_it() {
    let mut net = converged(8, Config::lan(8));
    let t0 = net.now;
    net.nodes[0]
        .handle_command(t0, Command::ForceLeave(name(4)))
        .unwrap();
    net.drain(0);
    net.run_for(Duration::from_secs(120));
    for i in (0..8).filter(|&i| i != 4) {
        assert_eq!(listed(&net, i, 4), (false, false), "node {i} lists rc4");
    }
    let resurrections = net
        .events
        .iter()
        .filter(|(t, at, e)| {
            *t > t0 && *at != 4 && matches!(e, Event::MemberUp(id) if id.name() == &name(4))
        })
        .count();
    assert_eq!(resurrections, 0, "rc4 came back up somewhere");
    assert!(net.nodes[4].has_left(), "rc4 did not learn it was removed");
    assert!(net.events.iter().any(
        |(_, at, e)| *at == 4 && matches!(e, Event::NodeForceLeft(id) if id.name() == &name(4))
    ));
}

#[test]
fn a_force_left_node_comes_back_by_restarting() {
    let mut net = converged(6, Config::lan(6));
    let t0 = net.now;
    net.nodes[0]
        .handle_command(t0, Command::ForceLeave(name(2)))
        .unwrap();
    net.drain(0);
    net.run_for(Duration::from_secs(10));
    net.restart(2, 1);
    assert!(
        net.run_until(Duration::from_secs(30), MemNet::converged),
        "the restarted node was not taken back"
    );
}

#[test]
fn autoclean_forgets_a_crashed_node_on_every_node() {
    let mut config = Config::lan(6);
    config.autoclean = Some(Duration::from_secs(30));
    let mut net = converged(6, config);
    net.crash(5);
    let stopped_everywhere = |net: &MemNet| (0..5).all(|i| listed(net, i, 5) == (false, true));
    assert!(net.run_until(Duration::from_secs(30), stopped_everywhere));
    net.run_for(Duration::from_secs(45));
    for i in 0..5 {
        assert_eq!(
            listed(&net, i, 5),
            (false, false),
            "node {i} still lists rc5"
        );
        assert_eq!(
            net.nodes[i].membership().count(),
            4,
            "node {i} still holds a record of rc5"
        );
        assert!(net
            .events
            .iter()
            .any(|(_, at, e)| *at == i && *e == Event::NodeCleaned(name(5))));
    }
    // Sync does not bring the forgotten record back.
    net.run_for(Duration::from_secs(60));
    for i in 0..5 {
        assert_eq!(
            net.nodes[i].membership().count(),
            4,
            "node {i} took rc5's record back"
        );
    }
}

/// Cuts the network into `sides`, waits until each side holds the others
/// down, heals, and returns the time it took to converge.
fn partition_and_heal(net: &mut MemNet, sides: &[&[usize]], apart: Duration) -> Option<Duration> {
    for (i, a) in sides.iter().enumerate() {
        for b in &sides[i + 1..] {
            net.partition(a, b);
        }
    }
    net.run_for(apart);
    net.cut.clear();
    let t0 = net.now;
    net.run_until(Duration::from_secs(60), MemNet::converged)
        .then(|| net.now - t0)
}

fn rejoined_lost(net: &MemNet, i: usize, after: Time) -> bool {
    net.events.iter().any(|(t, at, e)| {
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
    let mut net = converged(6, Config::lan(6));
    let t0 = net.now;
    let took = partition_and_heal(&mut net, &[&[0, 1, 2], &[3, 4, 5]], Duration::from_secs(60));
    assert!(took.is_some(), "the halves did not merge within 60 s");
    // Equal halves: the half holding rc0 wins.
    for i in 0..3 {
        assert!(!rejoined_lost(&net, i, t0), "winner rc{i} rejoined");
    }
    for i in 3..6 {
        assert!(
            rejoined_lost(&net, i, t0),
            "loser rc{i} did not report Rejoined"
        );
    }
    assert!(net
        .events
        .iter()
        .any(|(_, _, e)| matches!(e, Event::PartitionDetected { .. })));
    // A renewed node holds no record of its own earlier identity.
    for i in 0..6 {
        let s = net.nodes[i].status();
        assert!(
            s.stopped_nodes.is_empty(),
            "rc{i} lists stopped nodes: {s:?}"
        );
        assert!(net.nodes[i].membership().all(|m| m.id().name() != &name(i)));
    }
}

#[test]
fn three_equal_sides_merge_into_one_cluster() {
    let mut net = converged(9, Config::lan(9));
    let took = partition_and_heal(
        &mut net,
        &[&[0, 1, 2], &[3, 4, 5], &[6, 7, 8]],
        Duration::from_secs(60),
    );
    assert!(took.is_some(), "three sides did not merge within 60 s");
}

#[test]
fn a_partition_longer_than_autoclean_heals_through_discovery() {
    let mut config = Config::lan(6);
    config.autoclean = Some(Duration::from_secs(20));
    let mut net = converged(6, config);
    net.partition(&[0, 1, 2], &[3, 4, 5]);
    net.run_for(Duration::from_secs(90));
    for i in 0..6 {
        assert_eq!(
            net.nodes[i].membership().count(),
            2,
            "rc{i} did not forget the other side"
        );
    }
    net.cut.clear();
    // Discovery runs every 5 s, as the static strategy does.
    let end = net.now + Duration::from_secs(60);
    let mut merged = false;
    while net.now < end && !merged {
        net.discover(&[0, 3], &[]);
        merged = net.run_until(Duration::from_secs(5), MemNet::converged);
    }
    assert!(
        merged,
        "the sides did not find each other within 60 s of discovery"
    );
}

#[test]
fn with_autoheal_off_the_sides_stay_apart_until_a_manual_join() {
    let mut config = Config::lan(6);
    config.autoheal = false;
    let mut net = converged(6, config);
    let healed = partition_and_heal(&mut net, &[&[0, 1, 2], &[3, 4, 5]], Duration::from_secs(60));
    assert!(healed.is_none(), "the sides merged with autoheal off");
    for i in 3..6 {
        let now = net.now;
        let seed = net.peer(0);
        assert!(net.nodes[i]
            .handle_command(now, Command::Join(vec![seed]))
            .is_err());
        net.nodes[i].handle_command(now, Command::Leave).unwrap();
        net.drain(i);
        net.join(i, 0);
    }
    assert!(
        net.run_until(Duration::from_secs(60), MemNet::converged),
        "manual joins did not merge"
    );
}
