//! Evidence from the network on real agents: when an agent's process is
//! SIGKILLed on a host that stays up, the next datagram to its port comes
//! back as "port unreachable", and the survivors suspect it at once instead
//! of waiting for failed probes and the suspicion timeout.
//!
//! Addresses 127.0.4.2 to 127.0.4.6 belong to this file (tests/agent_monitor.rs
//! uses 127.0.4.40 and up, on its own base port).
#![cfg(feature = "cli")]

mod common;

use std::time::Duration;

use common::{assert_all_see, logs, names, wait_until, AgentProc, Spec, TempDir};

#[test]
fn a_killed_agent_is_suspected_on_the_network_word_and_stopped_everywhere() {
    let dir = TempDir::new("agent_network_evidence");
    let seeds: Vec<String> = (2..=6).map(|i| format!("rc@127.0.4.{i}")).collect();
    let mut agents: Vec<AgentProc> = seeds
        .iter()
        .map(|name| AgentProc::start(dir.path(), &Spec::with_seeds(name, &seeds)))
        .collect();
    assert_all_see(
        &agents,
        &seeds,
        Duration::from_secs(20),
        "the agents did not form a cluster",
        String::new,
    );

    let mut victim = agents.remove(2);
    let gone = victim.name.clone();
    victim.kill();
    let stopped = wait_until(Duration::from_secs(30), || {
        agents.iter().all(|a| {
            a.status()
                .is_some_and(|s| names(&s.stopped_nodes) == [gone.clone()])
        })
    });
    let all = logs(&agents.iter().collect::<Vec<_>>());
    assert!(stopped, "{gone} not stopped everywhere\n{all}");
    // Some survivor took the network's word for it: the kernel's "port
    // unreachable" reached the node through the socket's error queue.
    let port = format!("{}:", gone.trim_start_matches("rc@"));
    assert!(
        agents.iter().any(|a| a
            .log()
            .lines()
            .any(|l| l.contains("port unreachable") && l.contains(&port))),
        "no survivor suspected {gone} on the network's word\n{all}"
    );
}
