//! How a partition heals, between real `Node`s on an in-memory network:
//! how soon the sides meet after the cut is lifted, whether the losing side
//! moves in one step, what the events say, and that no live member is
//! declared down by the heal.

mod support;

use std::time::Duration;

use rollcall::core::{Config, Event, Time};
use support::memnet::MemNet;

const N: usize = 10;
const LOSERS: std::ops::Range<usize> = 5..10;

/// A converged cluster of `N`, cut into halves 0..5 and 5..10 for `hold`,
/// then whole again; returns the network, when the cut was made and when
/// it was lifted.
fn cut_and_lift_at(hold: Duration) -> (MemNet, Time, Time) {
    let mut net = MemNet::converged_cluster(N, Config::lan(N as u32));
    let (a, b): (Vec<usize>, Vec<usize>) = (0..N).partition(|i| !LOSERS.contains(i));
    net.partition(&a, &b);
    let cut = net.now;
    net.run_for(hold);
    net.cut.clear();
    let lifted = net.now;
    (net, cut, lifted)
}

fn cut_and_lift(hold: Duration) -> (MemNet, Time) {
    let (net, _, lifted) = cut_and_lift_at(hold);
    (net, lifted)
}

fn events_after(net: &MemNet, after: Time) -> impl Iterator<Item = &(Time, usize, Event)> {
    net.events.iter().filter(move |(t, _, _)| *t >= after)
}

#[test]
fn halves_apart_for_35_seconds_agree_again_within_two_seconds_of_the_lift() {
    let (mut net, lifted) = cut_and_lift(Duration::from_secs(35));
    assert!(!net.converged(), "the halves never saw each other down");
    assert!(
        net.run_until(Duration::from_secs(2), MemNet::converged),
        "not merged 2 s after the lift (no discovery runs here: the sides \
         must reach each other by themselves)"
    );
    assert!(net.now - lifted <= Duration::from_secs(2));
}

#[test]
fn the_losing_half_rejoins_in_one_step() {
    let (mut net, lifted) = cut_and_lift(Duration::from_secs(35));
    assert!(net.run_until(Duration::from_secs(10), MemNet::converged));
    let rejoins: Vec<Time> = events_after(&net, lifted)
        .filter(|(_, _, e)| {
            matches!(
                e,
                Event::Rejoined {
                    lost_partition: true,
                    ..
                }
            )
        })
        .map(|(t, _, _)| *t)
        .collect();
    assert_eq!(rejoins.len(), LOSERS.len(), "one rejoin per loser");
    let (first, last) = (rejoins[0], *rejoins.last().unwrap());
    assert!(
        last - first < Duration::from_millis(100),
        "losers rejoined over {:?}, not in one step",
        last - first
    );
}

#[test]
fn losers_report_their_side_mates_as_renewed_not_as_up_again() {
    let (mut net, lifted) = cut_and_lift(Duration::from_secs(35));
    assert!(net.run_until(Duration::from_secs(10), MemNet::converged));
    let mut renewed = 0;
    for (_, at, e) in events_after(&net, lifted) {
        if !LOSERS.contains(at) {
            continue;
        }
        match e {
            Event::MemberUp(id) => {
                let mate = LOSERS.contains(&(usize::from(id.addr().port()) - 4370));
                assert!(!mate, "loser rc{at} reported side-mate {id} up again");
            }
            Event::MemberRenewed { .. } => renewed += 1,
            _ => {}
        }
    }
    // Each loser saw its four side-mates renewed.
    assert_eq!(renewed, LOSERS.len() * (LOSERS.len() - 1));
}

#[test]
fn no_live_member_is_declared_down_after_a_35_second_cut_is_lifted() {
    let (mut net, lifted) = cut_and_lift(Duration::from_secs(35));
    net.run_for(Duration::from_secs(30));
    assert!(net.converged());
    let downs: Vec<_> = events_after(&net, lifted)
        .filter(|(_, _, e)| matches!(e, Event::MemberDown(_)))
        .collect();
    assert!(downs.is_empty(), "declared down after the lift: {downs:?}");
}

#[test]
fn a_suspicion_raised_during_a_short_cut_is_refuted_after_it() {
    // Cut for less than the suspicion timeout (4 s at N = 10): every
    // suspicion raised during the cut is still running at the lift. Its
    // gossip was spent on datagrams that never crossed, so only being told
    // directly lets a suspect refute before its timer fires.
    let config = Config::lan(N as u32);
    assert!(config.swim.suspect_to_down_after > Duration::from_secs(3));
    let (mut net, cut, _) = cut_and_lift_at(Duration::from_secs(3));
    net.run_for(Duration::from_secs(30));
    assert!(net.converged());
    let downs: Vec<_> = events_after(&net, cut)
        .filter(|(_, _, e)| matches!(e, Event::MemberDown(_)))
        .collect();
    assert!(downs.is_empty(), "declared down: {downs:?}");
}

#[test]
fn a_healed_cluster_idles_as_cheaply_as_before_the_cut() {
    let mut net = MemNet::converged_cluster(N, Config::lan(N as u32));
    let bytes = |net: &MemNet| -> u64 { net.nodes.iter().map(|n| n.stats().bytes_sent).sum() };
    let window = Duration::from_secs(120);
    net.run_for(Duration::from_secs(60));
    let b0 = bytes(&net);
    net.run_for(window);
    let before = bytes(&net) - b0;
    let (a, b): (Vec<usize>, Vec<usize>) = (0..N).partition(|i| !LOSERS.contains(i));
    net.partition(&a, &b);
    net.run_for(Duration::from_secs(35));
    net.cut.clear();
    net.run_for(Duration::from_secs(60));
    assert!(net.converged());
    let b1 = bytes(&net);
    net.run_for(window);
    let after = bytes(&net) - b1;
    assert!(
        after * 100 <= before * 105,
        "idle bytes after the heal {after} against {before} before"
    );
}

#[test]
fn each_loser_counts_one_lost_run_and_a_winner_that_compared_counts_its_win_once() {
    // The side that meets the evidence first decides: over these cuts it is
    // sometimes a winner (it counts a win), sometimes the losers alone.
    let mut wins = 0;
    for secs in [20, 30, 40, 50, 60] {
        let (mut net, _) = cut_and_lift(Duration::from_secs(secs));
        assert!(net.run_until(Duration::from_secs(10), MemNet::converged));
        // More seconds of summaries must count nothing again.
        net.run_for(Duration::from_secs(5));
        for (i, n) in net.nodes.iter().enumerate() {
            let s = n.stats();
            let loser = LOSERS.contains(&i);
            assert_eq!(s.autoheal_lost, u64::from(loser), "cut {secs} s, node {i}");
            assert!(
                s.autoheal_won <= u64::from(!loser),
                "cut {secs} s, node {i}"
            );
            wins += s.autoheal_won;
        }
    }
    assert!(wins >= 1, "no winner ever counted a win");
}
