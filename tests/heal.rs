//! How a partition heals, between real `Node`s on the simulator's in-memory
//! network (`rollcall_sim::World`, every link 1 ms): how soon the sides meet
//! after the cut is lifted, whether the losing side moves in one step, what
//! the events say, and that no live member is declared down by the heal.

use std::time::Duration;

use rollcall::core::{Event, Time};
use rollcall_sim::audit::views_agree;
use rollcall_sim::run::joined;
use rollcall_sim::world::index_of;

use rollcall_sim::{NetProfile, World, WorldConfig};

const N: u32 = 10;
const LOSERS: std::ops::Range<u32> = 5..10;

/// A cluster of `N` formed by joining, cut into halves 0..5 and 5..10 for
/// `hold`, then whole again; returns the world, when the cut was made and
/// when it was lifted.
fn cut_and_lift_at(hold: Duration) -> (World, Time, Time) {
    let mut world = joined(&WorldConfig::plain(N)).unwrap();
    let halves = (0..N).map(|i| u16::from(LOSERS.contains(&i))).collect();
    world.partition(halves, false, "halves");
    let cut = world.now();
    world.run_for(hold);
    world.heal();
    let lifted = world.now();
    (world, cut, lifted)
}

fn cut_and_lift(hold: Duration) -> (World, Time) {
    let (world, _, lifted) = cut_and_lift_at(hold);
    (world, lifted)
}

/// Runs until every node's view holds every other node, for at most `d`.
fn agree_within(world: &mut World, d: Duration) -> bool {
    let end = world.now() + d;
    world.run_while(end, views_agree)
}

fn events_after(world: &World, after: Time) -> impl Iterator<Item = &(Time, u32, Event)> {
    world.events().iter().filter(move |(t, _, _)| *t >= after)
}

#[test]
fn halves_apart_for_35_seconds_agree_again_within_two_seconds_of_the_lift() {
    let (mut world, lifted) = cut_and_lift(Duration::from_secs(35));
    assert!(!views_agree(&world), "the halves never saw each other down");
    assert!(
        agree_within(&mut world, Duration::from_secs(2)),
        "not merged 2 s after the lift (no discovery runs here: the sides \
         must reach each other by themselves)"
    );
    assert!(world.now() - lifted <= Duration::from_secs(2));
}

#[test]
fn the_losing_half_rejoins_in_one_step() {
    let (mut world, lifted) = cut_and_lift(Duration::from_secs(35));
    assert!(agree_within(&mut world, Duration::from_secs(10)));
    let rejoins: Vec<(Time, u32)> = events_after(&world, lifted)
        .filter(|(_, _, e)| {
            matches!(
                e,
                Event::Rejoined {
                    lost_partition: true,
                    ..
                }
            )
        })
        .map(|(t, at, _)| (*t, *at))
        .collect();
    assert_eq!(rejoins.len(), LOSERS.len(), "one rejoin per loser");
    assert!(
        rejoins.iter().all(|(_, at)| LOSERS.contains(at)),
        "a winner rejoined: {rejoins:?}"
    );
    let (first, last) = (rejoins[0].0, rejoins[rejoins.len() - 1].0);
    assert!(
        last - first < Duration::from_millis(100),
        "losers rejoined over {:?}, not in one step",
        last - first
    );
}

#[test]
fn the_losing_half_rejoins_in_one_step_when_a_renewal_overtakes_the_follow() {
    // The LAN profile's links jitter, so of the datagrams a loser sends at
    // once (its `Follow` to each side-mate, then, having no member left, its
    // announces under the renewed identity to every static seed) a later
    // one can arrive first. The side-mates must
    // follow all the same, within a few link delays, not one by one as
    // each meets the winners by itself.
    const BIG: u32 = 20;
    for seed in 1..=6 {
        let cfg = WorldConfig {
            keep_events: true,
            discovery_seeds: (0..BIG).collect(),
            ..WorldConfig::new(BIG, seed, NetProfile::Lan)
        };
        let mut world = joined(&cfg).unwrap();
        world.partition(
            (0..BIG).map(|i| u16::from(i >= BIG / 2)).collect(),
            false,
            "halves",
        );
        world.run_for(Duration::from_secs(35));
        world.heal();
        let lifted = world.now();
        assert!(
            agree_within(&mut world, Duration::from_secs(10)),
            "seed {seed}"
        );
        let rejoins: Vec<Time> = events_after(&world, lifted)
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
        assert_eq!(
            rejoins.len() as u32,
            BIG / 2,
            "seed {seed}: one rejoin per loser"
        );
        let spread = rejoins[rejoins.len() - 1] - rejoins[0];
        assert!(
            spread < Duration::from_millis(10),
            "seed {seed}: losers rejoined over {spread:?}"
        );
    }
}

#[test]
fn losers_report_their_side_mates_as_renewed_not_as_up_again() {
    let (mut world, lifted) = cut_and_lift(Duration::from_secs(35));
    assert!(agree_within(&mut world, Duration::from_secs(10)));
    let mut renewed = 0;
    for (_, at, e) in events_after(&world, lifted) {
        if !LOSERS.contains(at) {
            continue;
        }
        match e {
            Event::MemberUp(id) => {
                let mate = index_of(id.addr(), N).is_some_and(|m| LOSERS.contains(&m));
                assert!(!mate, "loser n{at} reported side-mate {id} up again");
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
    let (mut world, lifted) = cut_and_lift(Duration::from_secs(35));
    world.run_for(Duration::from_secs(30));
    assert!(views_agree(&world));
    let downs: Vec<_> = events_after(&world, lifted)
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
    let (mut world, cut, _) = cut_and_lift_at(Duration::from_secs(3));
    assert!(world.config().swim.suspect_to_down_after > Duration::from_secs(3));
    world.run_for(Duration::from_secs(30));
    assert!(views_agree(&world));
    let downs: Vec<_> = events_after(&world, cut)
        .filter(|(_, _, e)| matches!(e, Event::MemberDown(_)))
        .collect();
    assert!(downs.is_empty(), "declared down: {downs:?}");
}

#[test]
fn a_healed_cluster_idles_as_cheaply_as_before_the_cut() {
    let mut world = joined(&WorldConfig::plain(N)).unwrap();
    let bytes = |world: &World| -> u64 { world.nodes().map(|(_, n)| n.stats().bytes_sent).sum() };
    let window = Duration::from_secs(120);
    world.run_for(Duration::from_secs(60));
    let b0 = bytes(&world);
    world.run_for(window);
    let before = bytes(&world) - b0;
    let halves = (0..N).map(|i| u16::from(LOSERS.contains(&i))).collect();
    world.partition(halves, false, "halves");
    world.run_for(Duration::from_secs(35));
    world.heal();
    world.run_for(Duration::from_secs(60));
    assert!(views_agree(&world));
    let b1 = bytes(&world);
    world.run_for(window);
    let after = bytes(&world) - b1;
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
        let (mut world, _) = cut_and_lift(Duration::from_secs(secs));
        assert!(agree_within(&mut world, Duration::from_secs(10)));
        // More seconds of summaries must count nothing again.
        world.run_for(Duration::from_secs(5));
        for (i, n) in world.nodes() {
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
