//! An agent with another cookie never appears in the cluster, nor the
//! cluster in its view, even with every node among its seeds: over UDP, and
//! over QUIC, where TLS lets it connect (self-signed certificates,
//! `verify_none`) and the cookie's seal alone keeps it out.
//!
//! Addresses 127.0.2.x belong to this file (UDP below .10, QUIC above).
#![cfg(feature = "cli")]

mod common;

use std::time::{Duration, Instant};

use common::{logs, names, wait_until, AgentProc, Spec, TempDir};

#[test]
fn an_agent_with_another_cookie_never_appears_anywhere() {
    kept_out("udp", 0);
}

#[cfg(feature = "quic")]
#[test]
fn an_agent_with_another_cookie_never_appears_anywhere_over_quic() {
    kept_out("quic", 10);
}

/// Three members and an intruder over `proto`, at 127.0.2.(2 + offset)...
fn kept_out(proto: &str, offset: u8) {
    let dir = TempDir::new(&format!("agent_cookie_{proto}"));
    let seeds: Vec<String> = (2..=4)
        .map(|i| format!("rc@127.0.2.{}", i + offset))
        .collect();
    let intruder_name = format!("rc@127.0.2.{}", 9 + offset);
    let with_proto = |mut spec: Spec| {
        spec.env
            .push(("ROLLCALL_CLUSTER__PROTO_DIST".to_owned(), proto.to_owned()));
        spec
    };
    let mut intruder_seeds = seeds.clone();
    intruder_seeds.push(intruder_name.clone());
    let intruder = AgentProc::start(
        dir.path(),
        &with_proto(Spec {
            cookie: "not the cluster's cookie".into(),
            ..Spec::with_seeds(&intruder_name, &intruder_seeds)
        }),
    );
    // The members list the intruder among their seeds too.
    let agents: Vec<AgentProc> = seeds
        .iter()
        .map(|n| {
            AgentProc::start(
                dir.path(),
                &with_proto(Spec::with_seeds(n, &intruder_seeds)),
            )
        })
        .collect();
    let mut everyone: Vec<&AgentProc> = agents.iter().collect();
    everyone.push(&intruder);

    let formed = wait_until(Duration::from_secs(20), || {
        agents
            .iter()
            .all(|a| a.status().is_some_and(|s| names(&s.running_nodes) == seeds))
    });
    assert!(
        formed,
        "the three agents did not form a cluster\n{}",
        logs(&everyone)
    );

    // Several probe periods and a rediscovery round later, still apart.
    let end = Instant::now() + Duration::from_secs(6);
    while Instant::now() < end {
        for a in &agents {
            let s = a.status().expect("a member answers");
            let all: Vec<String> = names(&s.running_nodes)
                .into_iter()
                .chain(names(&s.stopped_nodes))
                .collect();
            assert!(
                !all.contains(&intruder_name),
                "{} lists the intruder: {s}",
                a.name
            );
        }
        let s = intruder.status().expect("the intruder answers");
        assert_eq!(
            names(&s.running_nodes),
            std::slice::from_ref(&intruder_name)
        );
        assert!(s.stopped_nodes.is_empty(), "intruder sees {s}");
        std::thread::sleep(Duration::from_millis(500));
    }
}
