//! Members becoming suspect and proving alive, reported on every node:
//! by the nodes whose probes failed and by those that learned it by gossip.
//! Real `Node`s on the simulator's in-memory network (`rollcall_sim::World`,
//! every link 1 ms).

use std::collections::BTreeSet;
use std::time::Duration;

use rollcall::core::{Event, Liveness, NodeName};
use rollcall_sim::run::joined;
use rollcall_sim::{World, WorldConfig};

const N: u32 = 8;
/// The member cut off.
const CUT: u32 = N - 1;

fn cut_name(world: &World) -> NodeName {
    world.peer(CUT).name
}

fn liveness(world: &World, at: u32) -> Option<Liveness> {
    let cut = cut_name(world);
    world
        .node(at)?
        .member_states()
        .into_iter()
        .find(|m| m.id.name() == &cut)
        .map(|m| m.liveness)
}

/// How many events node `at` reported that `about` maps to the cut
/// member's name.
fn reported(world: &World, at: u32, about: fn(&Event) -> Option<NodeName>) -> usize {
    let cut = cut_name(world);
    world
        .events()
        .iter()
        .filter(|(_, i, e)| *i == at && about(e).as_ref() == Some(&cut))
        .count()
}

#[test]
fn every_node_reports_a_cut_off_member_suspect_and_then_alive_when_it_refutes() {
    let mut cfg = WorldConfig::plain(N);
    // Only probes and gossip: no evidence from the network.
    cfg.tuning.network_evidence = false;
    let mut world = joined(&cfg).unwrap();
    let alone = (0..N).map(|i| u16::from(i == CUT)).collect();
    world.partition(alone, false, "the member cut off");
    // Nodes that held the member suspect before any probe of theirs failed:
    // they learned it by gossip.
    let mut by_gossip = BTreeSet::new();
    let all_suspect = |world: &World| {
        let suspect: Vec<u32> = (0..CUT)
            .filter(|&i| liveness(world, i) == Some(Liveness::Suspect))
            .collect();
        for &i in &suspect {
            if world.node(i).unwrap().stats().lifeguard.probes_failed == 0 {
                by_gossip.insert(i);
            }
        }
        suspect.len() == CUT as usize
    };
    let end = world.now() + Duration::from_secs(30);
    assert!(
        world.run_while(end, all_suspect),
        "not every node suspected n{CUT}: {:?}",
        (0..CUT).map(|i| liveness(&world, i)).collect::<Vec<_>>()
    );
    assert!(
        !by_gossip.is_empty(),
        "every node suspected by its own probe"
    );
    world.heal();
    let all_alive = |world: &World| (0..CUT).all(|i| liveness(world, i) == Some(Liveness::Alive));
    let end = world.now() + Duration::from_secs(30);
    assert!(
        world.run_while(end, all_alive),
        "n{CUT} did not refute everywhere"
    );
    let suspect = |e: &Event| match e {
        Event::MemberSuspect(id) => Some(id.name().clone()),
        _ => None,
    };
    let alive = |e: &Event| match e {
        Event::MemberAlive(id) => Some(id.name().clone()),
        _ => None,
    };
    let down = |e: &Event| match e {
        Event::MemberDown(id) => Some(id.name().clone()),
        _ => None,
    };
    for i in 0..CUT {
        assert_eq!(reported(&world, i, down), 0, "n{i} declared n{CUT} down");
        let s = reported(&world, i, suspect);
        assert!(s >= 1, "n{i} reported no MemberSuspect");
        assert_eq!(
            reported(&world, i, alive),
            s,
            "n{i}: not one MemberAlive per MemberSuspect"
        );
    }
}
