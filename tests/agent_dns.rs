//! Agents that find each other through DNS records served by a real
//! dnsmasq: four by A records, then a fifth when its record is added; four
//! by SRV records, then a fifth when its SRV record is added. A node that
//! leaves stays out, although its record is still there. A dns config
//! without a name is refused at start.
//!
//! Addresses 127.0.10.x belong to this file.
#![cfg(all(feature = "cli", feature = "dns"))]

mod common;
mod discovery_support;

use std::net::IpAddr;
use std::time::Duration;

use common::{
    all_see, assert_all_see, logs, names, text, wait_until, AgentProc, Spec, TempDir, BASE_PORT,
};
use discovery_support::dnsmasq::{Dnsmasq, Srv};

const ZONE: &str = "rollcall.test";

/// A dns agent that rediscovers every second.
fn spec(name: &str, dns_table: String) -> Spec {
    Spec {
        strategy: "dns",
        extra: dns_table,
        env: common::fast_discovery(),
        ..Spec::manual(name)
    }
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn four_agents_form_a_cluster_from_a_records_and_a_fifth_joins_when_its_record_appears() {
    let dir = TempDir::new("agent_dns_a");
    let ips: Vec<String> = (2..=5).map(|i| format!("127.0.10.{i}")).collect();
    let hosts: Vec<(&str, IpAddr)> = ips.iter().map(|i| ("nodes.rollcall.test", ip(i))).collect();
    let mut dns = Dnsmasq::start(ZONE, &hosts, &[]);
    let table = format!(
        "[cluster.dns]\nname = \"nodes.rollcall.test\"\nrecord_type = \"a\"\nserver = \"{}\"\n",
        dns.addr()
    );
    let mut nodes: Vec<String> = ips.iter().map(|i| format!("rc@{i}")).collect();
    let mut agents: Vec<AgentProc> = nodes
        .iter()
        .map(|n| AgentProc::start(dir.path(), &spec(n, table.clone())))
        .collect();
    assert_all_see(
        &agents,
        &nodes,
        Duration::from_secs(20),
        "the four agents did not find each other through A records",
        || format!("dnsmasq:\n{}", dns.log()),
    );

    // A record added while the cluster runs brings a fifth node in.
    dns.add_host("nodes.rollcall.test", ip("127.0.10.6"));
    nodes.push("rc@127.0.10.6".to_owned());
    agents.push(AgentProc::start(
        dir.path(),
        &spec("rc@127.0.10.6", table.clone()),
    ));
    assert_all_see(
        &agents,
        &nodes,
        Duration::from_secs(20),
        "the fifth node did not come in",
        String::new,
    );

    // `cluster leave`: the node drops out and stays out, although its A
    // record still points at it and the others rediscover every second.
    let leaver = nodes.remove(0);
    let out = agents[0].ctl(&["cluster", "leave"]);
    assert!(out.status.success(), "leave failed: {}", text(&out));
    let rest: Vec<&AgentProc> = agents[1..].iter().collect();
    let dropped = wait_until(Duration::from_secs(15), || all_see(&rest, &nodes));
    assert!(dropped, "{leaver} still listed\n{}", logs(&rest));
    let rejoined = wait_until(Duration::from_secs(5), || {
        rest.iter().any(|a| {
            a.status()
                .is_some_and(|s| names(&s.running_nodes).contains(&leaver))
        })
    });
    assert!(
        !rejoined,
        "{leaver} rejoined after leaving\n{}",
        logs(&agents.iter().collect::<Vec<_>>())
    );
    // An explicit join brings it back.
    let out = agents[0].ctl(&["cluster", "join", "rc@127.0.10.3"]);
    assert!(out.status.success(), "join failed: {}", text(&out));
    nodes.push(leaver);
    assert_all_see(
        &agents,
        &nodes,
        Duration::from_secs(20),
        "the node did not come back after join",
        String::new,
    );
}

#[test]
fn four_agents_form_a_cluster_from_srv_records_and_a_fifth_joins_when_its_record_appears() {
    let dir = TempDir::new("agent_dns_srv");
    let service = "_rollcall._udp.rollcall.test";
    let host = |i: usize| format!("n{i}.rollcall.test");
    let addr = |i: usize| format!("127.0.10.{}", 10 + i);
    let hosts: Vec<(String, IpAddr)> = (1..=4).map(|i| (host(i), ip(&addr(i)))).collect();
    let hosts: Vec<(&str, IpAddr)> = hosts.iter().map(|(h, a)| (h.as_str(), *a)).collect();
    let srv = |i: usize| Srv {
        name: service.to_owned(),
        target: host(i),
        port: BASE_PORT,
    };
    let mut dns = Dnsmasq::start(ZONE, &hosts, &(1..=4).map(srv).collect::<Vec<_>>());
    let table = format!(
        "[cluster.dns]\nname = \"{service}\"\nrecord_type = \"srv\"\nserver = \"{}\"\n",
        dns.addr()
    );
    // Names hold domain hosts; each binds its own loopback address.
    let agent = |i: usize| {
        let mut s = spec(&format!("rc@{}", host(i)), table.clone());
        s.env.push(("ROLLCALL_NODE__BIND".to_owned(), addr(i)));
        AgentProc::start(dir.path(), &s)
    };
    let mut nodes: Vec<String> = (1..=4).map(|i| format!("rc@{}", host(i))).collect();
    let mut agents: Vec<AgentProc> = (1..=4).map(agent).collect();
    assert_all_see(
        &agents,
        &nodes,
        Duration::from_secs(20),
        "the four agents did not find each other through SRV records",
        || format!("dnsmasq:\n{}", dns.log()),
    );

    // A fifth SRV record (and its target's address) brings a fifth node in.
    dns.add_host(&host(5), ip(&addr(5)));
    dns.add_srv(srv(5));
    nodes.push(format!("rc@{}", host(5)));
    agents.push(agent(5));
    assert_all_see(
        &agents,
        &nodes,
        Duration::from_secs(20),
        "the fifth node did not come in",
        || format!("dnsmasq:\n{}", dns.log()),
    );
}

#[test]
fn a_dns_config_without_a_name_is_refused_at_start_naming_the_key() {
    let dir = TempDir::new("agent_dns_bad");
    let bad = spec(
        "rc@127.0.10.30",
        "[cluster.dns]\nrecord_type = \"a\"\n".to_owned(),
    );
    common::assert_refused(dir.path(), &bad, "cluster.dns.name");
}
