//! Members becoming suspect and proving alive, reported on every node:
//! by the nodes whose probes failed and by those that learned it by gossip.

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use rollcall::core::{Config, Event, Liveness, NodeName};
use support::memnet::MemNet;

const N: usize = 8;
/// The member cut off.
const CUT: usize = N - 1;

fn name(i: usize) -> NodeName {
    format!("rc{i}@127.0.0.1").parse().unwrap()
}

fn liveness(net: &MemNet, at: usize) -> Option<Liveness> {
    net.nodes[at]
        .member_states()
        .into_iter()
        .find(|m| m.id.name() == &name(CUT))
        .map(|m| m.liveness)
}

/// How many events node `at` reported that `about` maps to the cut
/// member's name.
fn reported(net: &MemNet, at: usize, about: fn(&Event) -> Option<NodeName>) -> usize {
    net.events
        .iter()
        .filter(|(_, i, e)| *i == at && about(e) == Some(name(CUT)))
        .count()
}

#[test]
fn every_node_reports_a_cut_off_member_suspect_and_then_alive_when_it_refutes() {
    let mut config = Config::lan(N as u32);
    // Only probes and gossip: no evidence from the network in memory.
    config.network_evidence = false;
    let mut net = MemNet::converged_cluster(N, config);
    let others: Vec<usize> = (0..CUT).collect();
    net.partition(&[CUT], &others);
    // Nodes that held the member suspect before any probe of theirs failed:
    // they learned it by gossip.
    let mut by_gossip = BTreeSet::new();
    let all_suspect = |net: &MemNet| {
        let suspect: Vec<usize> = (0..CUT)
            .filter(|&i| liveness(net, i) == Some(Liveness::Suspect))
            .collect();
        for &i in &suspect {
            if net.nodes[i].stats().lifeguard.probes_failed == 0 {
                by_gossip.insert(i);
            }
        }
        suspect.len() == CUT
    };
    assert!(
        net.run_until(Duration::from_secs(30), all_suspect),
        "not every node suspected rc{CUT}: {:?}",
        (0..CUT).map(|i| liveness(&net, i)).collect::<Vec<_>>()
    );
    assert!(
        !by_gossip.is_empty(),
        "every node suspected by its own probe"
    );
    net.cut.clear();
    let all_alive = |net: &MemNet| (0..CUT).all(|i| liveness(net, i) == Some(Liveness::Alive));
    assert!(
        net.run_until(Duration::from_secs(30), all_alive),
        "rc{CUT} did not refute everywhere"
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
        assert_eq!(reported(&net, i, down), 0, "rc{i} declared rc{CUT} down");
        let s = reported(&net, i, suspect);
        assert!(s >= 1, "rc{i} reported no MemberSuspect");
        assert_eq!(
            reported(&net, i, alive),
            s,
            "rc{i}: not one MemberAlive per MemberSuspect"
        );
    }
}
