//! Full-state sync between real `Node`s on an in-memory network.

mod support;

use std::time::Duration;

use rollcall::core::Config;
use support::memnet::MemNet;

fn converged(n: usize, config: Config) -> MemNet {
    MemNet::converged_cluster(n, config)
}

#[test]
fn a_node_that_restarts_with_an_empty_view_gets_the_whole_view_back_within_one_sync_round() {
    let n = 100;
    let mut net = converged(n, Config::lan(100));
    net.run_for(Duration::from_secs(5));
    net.crash(7);
    net.restart(7, 3);
    // One round: summary, digest, records, records: four one-way latencies.
    let round = net.latency * 4;
    let t0 = net.now;
    let got_all = net.run_until(round + Duration::from_micros(1), |net| {
        net.nodes[7].num_members() == n - 1
    });
    let sync = net.nodes[7].stats().sync;
    assert!(
        got_all,
        "after {:?} node 7 knows {} of {} members (sync: {sync:?})",
        net.now - t0,
        net.nodes[7].num_members(),
        n - 1
    );
    assert_eq!(
        sync.sessions_started, 1,
        "more than the join's own round ran"
    );
    assert!(
        sync.records_received >= (n - 1) as u64 - 40,
        "the view did not come by sync: {sync:?}"
    );
}

#[test]
fn a_converged_idle_cluster_only_exchanges_summaries() {
    let mut net = converged(10, Config::lan(10));
    net.run_for(Duration::from_secs(30));
    let before: Vec<_> = net.nodes.iter().map(|n| n.stats().sync).collect();
    net.run_for(Duration::from_secs(60));
    for (node, b) in net.nodes.iter().zip(&before) {
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
    let mut config = Config::lan(10);
    config.sync = None;
    let net = {
        let mut net = MemNet::new(10, config);
        for i in 1..10 {
            net.join(i, 0);
        }
        net.run_for(Duration::from_secs(30));
        net
    };
    for node in &net.nodes {
        assert_eq!(node.stats().sync.datagrams_sent, 0);
        assert!(node.stats().datagrams_sent > 0);
    }
}

#[test]
fn an_isolated_node_recovers_the_whole_view_after_the_partition_heals() {
    let n = 60;
    let mut net = converged(n, Config::lan(60));
    let others: Vec<usize> = (0..n).filter(|&i| i != 5).collect();
    net.partition(&[5], &others);
    // Until both sides declare each other down. The 59 confirm each
    // other's suspicions of node 5 and declare it down within seconds;
    // node 5 alone fails every probe, so Lifeguard stretches its probe
    // period to 8 s and its suspicions to 6 times the timeout, with nobody
    // to confirm them: about 8 minutes for all 59 (ALGORITHM.md,
    // "Lifeguard").
    let apart = net.run_until(Duration::from_secs(900), |net: &MemNet| {
        net.nodes[5].num_members() == 0
    });
    assert!(
        apart,
        "node 5 still holds {} members",
        net.nodes[5].num_members()
    );
    net.cut.clear();
    let healed = net.run_until(Duration::from_secs(60), MemNet::converged);
    assert!(
        healed,
        "60 s after healing, node 5 knows {} of {} members",
        net.nodes[5].num_members(),
        n - 1
    );
}
