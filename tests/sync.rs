//! Full-state sync between real `Node`s on the simulator's in-memory network
//! (`rollcall_sim::World`, every link 1 ms).

use std::time::Duration;

use rollcall_sim::audit::views_agree;
use rollcall_sim::run::joined;
use rollcall_sim::{World, WorldConfig};

fn members(world: &World, i: u32) -> usize {
    world.node(i).map_or(0, |n| n.num_members())
}

#[test]
fn a_node_that_restarts_with_an_empty_view_gets_the_whole_view_back_within_one_sync_round() {
    let n = 100;
    let mut world = joined(&WorldConfig::plain(n)).unwrap();
    world.run_for(Duration::from_secs(5));
    world.crash(7, false);
    world.start(7, &[3]);
    // One round: summary, digest, records, records: four one-way latencies.
    let round = world.network().link_latency(7, 3) * 4;
    let t0 = world.now();
    let got_all = world.run_while(t0 + round + Duration::from_micros(1), |w| {
        members(w, 7) == n as usize - 1
    });
    let sync = world.node(7).unwrap().stats().sync;
    assert!(
        got_all,
        "after {:?} node 7 knows {} of {} members (sync: {sync:?})",
        world.now() - t0,
        members(&world, 7),
        n - 1
    );
    assert_eq!(
        sync.sessions_started, 1,
        "more than the join's own round ran"
    );
    assert!(
        sync.records_received >= u64::from(n - 1) - 40,
        "the view did not come by sync: {sync:?}"
    );
}

#[test]
fn a_converged_idle_cluster_only_exchanges_summaries() {
    let mut world = joined(&WorldConfig::plain(10)).unwrap();
    world.run_for(Duration::from_secs(30));
    let before: Vec<_> = world.nodes().map(|(_, n)| n.stats().sync).collect();
    world.run_for(Duration::from_secs(60));
    for ((_, node), b) in world.nodes().zip(&before) {
        let a = node.stats().sync;
        assert_eq!(
            a.summaries_differ,
            b.summaries_differ,
            "{}: views differed while idle",
            node.identity()
        );
        assert_eq!(
            a.records_sent,
            b.records_sent,
            "{}: records sent while idle",
            node.identity()
        );
        assert!(
            a.sessions_started > b.sessions_started,
            "{}: no sync ran in 60 s",
            node.identity()
        );
        let bytes_per_s = (a.bytes_sent - b.bytes_sent) as f64 / 60.0;
        assert!(
            bytes_per_s < 40.0,
            "{}: {bytes_per_s} sync bytes/s while idle",
            node.identity()
        );
    }
}

#[test]
fn with_sync_off_no_sync_datagram_is_sent() {
    let mut cfg = WorldConfig::plain(10);
    cfg.tuning.sync = false;
    let mut world = rollcall_sim::World::new(&cfg).unwrap();
    for i in 0..10 {
        world.start(i, &[0]);
    }
    world.run_for(Duration::from_secs(30));
    assert_eq!(world.running().count(), 10);
    for (_, node) in world.nodes() {
        assert_eq!(node.stats().sync.datagrams_sent, 0);
        assert!(node.stats().datagrams_sent > 0);
    }
}

#[test]
fn an_isolated_node_recovers_the_whole_view_after_the_partition_heals() {
    let n = 60;
    let mut world = joined(&WorldConfig::plain(n)).unwrap();
    let alone = (0..n).map(|i| u16::from(i == 5)).collect();
    world.partition(alone, false, "node 5 alone");
    // Until both sides declare each other down. The 59 confirm each
    // other's suspicions of node 5 and declare it down within seconds;
    // node 5 alone fails every probe, so Lifeguard stretches its probe
    // period to 8 s and its suspicions to 6 times the timeout, with nobody
    // to confirm them: about 8 minutes for all 59 (ALGORITHM.md,
    // "Lifeguard").
    let end = world.now() + Duration::from_secs(900);
    let apart = world.run_while(end, |w| members(w, 5) == 0);
    assert!(apart, "node 5 still holds {} members", members(&world, 5));
    world.heal();
    let end = world.now() + Duration::from_secs(60);
    let healed = world.run_while(end, views_agree);
    assert!(
        healed,
        "60 s after healing, node 5 knows {} of {} members",
        members(&world, 5),
        n - 1
    );
}
