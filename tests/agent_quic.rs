//! Real agents over QUIC: five with mutual TLS from a test CA form a
//! cluster and report a crash; an agent with a certificate from another CA
//! never gets in, and the members log its refused handshake once; a
//! restarted member gets its whole view back; three agents over `quic6`,
//! and three over `udp6`, on `::1` form a cluster.
//!
//! Addresses 127.0.13.x belong to this file (other test files use other
//! ranges, so they run in parallel); the IPv6 agents use ports of their own.
#![cfg(all(feature = "cli", feature = "quic"))]

#[path = "common/ca.rs"]
#[allow(dead_code)]
mod ca;
mod common;

use std::path::Path;
use std::time::Duration;

use ca::Ca;
use common::{assert_all_see, logs, names, wait_until, AgentProc, Spec, TempDir};

/// A static-seed agent over `proto` with the certificates of `ca` (mutual
/// TLS), or a self-signed one when `ca` is `None`.
fn refs(a: &[AgentProc]) -> Vec<&AgentProc> {
    a.iter().collect()
}

fn quic_spec(dir: &Path, name: &str, seeds: &[String], proto: &str, ca: Option<&Ca>) -> Spec {
    let mut spec = Spec::with_seeds(name, seeds);
    spec.env
        .push(("ROLLCALL_CLUSTER__PROTO_DIST".to_owned(), proto.to_owned()));
    if let Some(ca) = ca {
        let host = name.split('@').nth(1).unwrap_or_default();
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let tag = name.replace(['@', '.', ':', '[', ']'], "_");
        let files = ca.files(dir, &tag, &[host], false);
        let path = |p: Option<std::path::PathBuf>| p.unwrap().display().to_string();
        spec.extra = format!(
            "[cluster.quic]\ncertfile = {:?}\nkeyfile = {:?}\ncacertfile = {:?}\nverify = \"verify_peer\"\n",
            path(files.certfile),
            path(files.keyfile),
            path(files.cacertfile),
        );
    }
    spec
}

#[test]
fn five_agents_over_quic_with_mutual_tls_form_a_cluster_and_keep_another_ca_out() {
    let dir = TempDir::new("agent_quic");
    let ca = Ca::new("rollcall test CA");
    let seeds: Vec<String> = (2..=6).map(|i| format!("rc@127.0.13.{i}")).collect();
    let mut agents: Vec<AgentProc> = seeds
        .iter()
        .map(|name| {
            AgentProc::start(
                dir.path(),
                &quic_spec(dir.path(), name, &seeds, "quic", Some(&ca)),
            )
        })
        .collect();
    assert_all_see(
        &agents,
        &seeds,
        Duration::from_secs(20),
        "the five QUIC agents did not all see each other",
        String::new,
    );
    for a in &agents {
        assert!(
            a.log().contains("QUIC with verify_peer"),
            "{} did not start QUIC with verify_peer\n{}",
            a.name,
            a.log()
        );
    }

    // An agent whose certificate another CA signed, seeded with the
    // members: every handshake is refused, so it never gets in.
    let other = Ca::new("another CA");
    let outsider_name = "rc@127.0.13.9";
    let outsider = AgentProc::start(
        dir.path(),
        &quic_spec(dir.path(), outsider_name, &seeds, "quic", Some(&other)),
    );
    let refused = wait_until(Duration::from_secs(15), || {
        agents
            .iter()
            .any(|a| a.log().contains("QUIC handshake refused"))
    });
    assert!(
        refused,
        "no member logged a refused handshake\n{}",
        logs(&refs(&agents))
    );
    std::thread::sleep(Duration::from_secs(3));
    for a in &agents {
        let s = a.status().expect("a member answers");
        assert!(
            !names(&s.running_nodes).contains(&outsider_name.to_owned())
                && !names(&s.stopped_nodes).contains(&outsider_name.to_owned()),
            "{} lists the outsider: {s:?}",
            a.name
        );
        // Logged once per address, not once per datagram.
        let lines = a
            .log()
            .lines()
            .filter(|l| l.contains("QUIC handshake refused") && l.contains("127.0.13.9"))
            .count();
        assert!(lines <= 1, "{} logged the refusal {lines} times", a.name);
    }
    let s = outsider.status().expect("the outsider answers");
    assert_eq!(names(&s.running_nodes), [outsider_name], "{s:?}");
    drop(outsider);

    // A crash is seen by every survivor.
    agents[4].kill();
    let survivors = &agents[..4];
    let seen = wait_until(Duration::from_secs(30), || {
        survivors.iter().all(|a| {
            a.status()
                .is_some_and(|s| names(&s.stopped_nodes) == [seeds[4].clone()])
        })
    });
    assert!(seen, "the crash was not seen\n{}", logs(&refs(survivors)));

    // The crashed member restarts and gets its whole view back.
    agents[4] = AgentProc::start(
        dir.path(),
        &quic_spec(dir.path(), &seeds[4], &seeds, "quic", Some(&ca)),
    );
    assert_all_see(
        &agents,
        &seeds,
        Duration::from_secs(20),
        "the restarted member did not get its view back",
        String::new,
    );
}

#[test]
fn three_agents_over_quic6_on_the_ipv6_loopback_form_a_cluster() {
    three_on_ipv6_loopback("quic6", 24470);
}

#[test]
fn three_agents_over_udp6_on_the_ipv6_loopback_form_a_cluster() {
    three_on_ipv6_loopback("udp6", 24480);
}

/// Three agents over `proto` on `::1`, gossiping on `base_port` + 1..3.
fn three_on_ipv6_loopback(proto: &str, base_port: u16) {
    let dir = TempDir::new(&format!("agent_{proto}"));
    // IPv6 loopback has one address: the agents differ by port (rc1, rc2,
    // ...). Names with and without brackets mean the same node.
    let seeds: Vec<String> = ["rc1@[::1]", "rc2@::1", "rc3@[::1]"]
        .map(String::from)
        .to_vec();
    let canonical: Vec<String> = (1..=3).map(|i| format!("rc{i}@::1")).collect();
    let agents: Vec<AgentProc> = seeds
        .iter()
        .map(|name| {
            let mut spec = quic_spec(dir.path(), name, &seeds, proto, None);
            // Ports of their own, away from other tests' on ::1.
            spec.env.push((
                "ROLLCALL_CLUSTER__BASE_PORT".to_owned(),
                base_port.to_string(),
            ));
            AgentProc::start(dir.path(), &spec)
        })
        .collect();
    assert_all_see(
        &agents,
        &canonical,
        Duration::from_secs(20),
        &format!("the three {proto} agents did not all see each other"),
        String::new,
    );
    // ctl answers for an IPv6 node.
    let out = agents[0].ctl(&["cluster", "status"]);
    assert!(out.status.success(), "{}", common::text(&out));
    if proto == "quic6" {
        assert!(
            agents[0].log().contains("cookie alone"),
            "a self-signed certificate must be announced\n{}",
            agents[0].log()
        );
    }
}

#[test]
fn a_missing_certificate_file_or_a_bad_verify_value_stops_the_agent_with_the_key_named() {
    let dir = TempDir::new("agent_quic_refused");
    let mut spec = quic_spec(dir.path(), "rc@127.0.13.20", &[], "quic", None);
    spec.strategy = "manual";
    spec.extra = "[cluster.quic]\ncertfile = \"/nonexistent/node.pem\"\nkeyfile = \"/nonexistent/node-key.pem\"\ncacertfile = \"/nonexistent/ca.pem\"\n".to_owned();
    common::assert_refused(dir.path(), &spec, "cluster.quic.certfile");
    let mut bad = spec.clone();
    bad.name = "rc@127.0.13.21".to_owned();
    bad.extra = "[cluster.quic]\nverify = \"verify_sometimes\"\n".to_owned();
    common::assert_refused(dir.path(), &bad, "verify");
}
