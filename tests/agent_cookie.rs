//! An agent with another cookie never appears in the cluster, nor the
//! cluster in its view, even with every node among its seeds.
//!
//! Addresses 127.0.2.x belong to this file.
#![cfg(feature = "cli")]

mod common;

use std::time::{Duration, Instant};

use common::{logs, names, wait_until, AgentProc, Spec, TempDir};

#[test]
fn an_agent_with_another_cookie_never_appears_anywhere() {
    let dir = TempDir::new("agent_cookie");
    let seeds: Vec<String> = (2..=4).map(|i| format!("rc@127.0.2.{i}")).collect();
    let intruder_name = "rc@127.0.2.9".to_owned();
    let mut intruder_seeds = seeds.clone();
    intruder_seeds.push(intruder_name.clone());
    let intruder = AgentProc::start(
        dir.path(),
        &Spec {
            cookie: "not the cluster's cookie".into(),
            ..Spec::with_seeds(&intruder_name, &intruder_seeds)
        },
    );
    // The members list the intruder among their seeds too.
    let agents: Vec<AgentProc> = seeds
        .iter()
        .map(|n| AgentProc::start(dir.path(), &Spec::with_seeds(n, &intruder_seeds)))
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
