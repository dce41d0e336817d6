//! Agents that register in, and find each other through, a real etcd: four
//! form a cluster, a fifth that registers later comes in; a crashed node's
//! key expires with its lease; a node that leaves deletes its key and stays
//! out until it joins again.
//!
//! Addresses 127.0.11.x belong to this file.
#![cfg(all(feature = "cli", feature = "etcd"))]

mod common;
mod discovery_support;

use std::time::Duration;

use common::{all_see, assert_all_see, logs, names, text, wait_until, AgentProc, Spec, TempDir};
use discovery_support::etcd::Etcd;

/// Where the agents' keys live: `/<prefix>/<cluster name>/nodes/`.
const NODES: &str = "/rctest/rollcall/nodes/";

fn spec(name: &str, etcd: &Etcd) -> Spec {
    Spec {
        strategy: "etcd",
        extra: format!(
            "[cluster.etcd]\nserver = \"{}\"\nprefix = \"rctest\"\nnode_ttl = \"3s\"\n",
            etcd.url()
        ),
        env: common::fast_discovery(),
        ..Spec::manual(name)
    }
}

fn keys(etcd: &Etcd) -> Vec<String> {
    etcd.keys(NODES)
        .into_iter()
        .map(|k| k.trim_start_matches(NODES).to_owned())
        .collect()
}

#[test]
fn agents_cluster_through_etcd_and_crashed_or_departed_nodes_lose_their_keys() {
    let dir = TempDir::new("agent_etcd");
    let etcd = Etcd::start();
    let mut nodes: Vec<String> = (2..=5).map(|i| format!("rc@127.0.11.{i}")).collect();
    let mut agents: Vec<AgentProc> = nodes
        .iter()
        .map(|n| AgentProc::start(dir.path(), &spec(n, &etcd)))
        .collect();
    let all = |a: &[AgentProc]| logs(&a.iter().collect::<Vec<_>>());
    assert_all_see(
        &agents,
        &nodes,
        Duration::from_secs(20),
        "the four agents did not find each other through etcd",
        || format!("etcd:\n{}", etcd.log()),
    );
    assert_eq!(keys(&etcd), nodes, "etcd keys");

    // A fifth node registers and comes in.
    nodes.push("rc@127.0.11.6".to_owned());
    agents.push(AgentProc::start(dir.path(), &spec("rc@127.0.11.6", &etcd)));
    assert_all_see(
        &agents,
        &nodes,
        Duration::from_secs(20),
        "the fifth node did not come in",
        String::new,
    );

    // SIGKILL: the key outlives the node only as long as its lease (3 s).
    let dead = nodes.remove(4);
    agents[4].kill();
    let expired = wait_until(Duration::from_secs(12), || !keys(&etcd).contains(&dead));
    assert!(expired, "{dead}'s key did not expire: {:?}", keys(&etcd));
    let reported = wait_until(Duration::from_secs(30), || {
        agents[..4].iter().all(|a| {
            a.status()
                .is_some_and(|s| names(&s.stopped_nodes).contains(&dead))
        })
    });
    assert!(reported, "{dead} not reported stopped\n{}", all(&agents));

    // `cluster leave`: the key goes at once, and the node stays out.
    let leaver = nodes.remove(0);
    let out = agents[0].ctl(&["cluster", "leave"]);
    assert!(out.status.success(), "leave failed: {}", text(&out));
    let unregistered = wait_until(Duration::from_secs(5), || !keys(&etcd).contains(&leaver));
    assert!(unregistered, "{leaver} kept its key: {:?}", keys(&etcd));
    let rest: Vec<&AgentProc> = agents[1..4].iter().collect();
    let dropped = wait_until(Duration::from_secs(15), || all_see(&rest, &nodes));
    assert!(
        dropped,
        "{leaver} still running somewhere\n{}",
        all(&agents)
    );
    let rejoined = wait_until(Duration::from_secs(5), || {
        keys(&etcd).contains(&leaver)
            || rest.iter().any(|a| {
                a.status()
                    .is_some_and(|s| names(&s.running_nodes).contains(&leaver))
            })
    });
    assert!(!rejoined, "{leaver} came back by itself\n{}", all(&agents));

    // `cluster join` registers it again.
    let out = agents[0].ctl(&["cluster", "join", "rc@127.0.11.3"]);
    assert!(out.status.success(), "join failed: {}", text(&out));
    let registered = wait_until(Duration::from_secs(10), || keys(&etcd).contains(&leaver));
    assert!(
        registered,
        "{leaver} did not register again\n{}",
        all(&agents)
    );
}

#[test]
fn an_etcd_config_with_a_bad_url_is_refused_at_start_naming_the_key() {
    let dir = TempDir::new("agent_etcd_bad");
    let bad = Spec {
        strategy: "etcd",
        extra: "[cluster.etcd]\nserver = \"127.0.0.1:2379\"\n".to_owned(),
        ..Spec::manual("rc@127.0.11.30")
    };
    common::assert_refused(dir.path(), &bad, "cluster.etcd.server");
}
