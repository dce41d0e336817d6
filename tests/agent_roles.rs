//! Roles on real agents: three core nodes and two replicants with static
//! seeds (the core nodes) form one cluster; every node lists every node's
//! role; `cluster join` on a replicant is refused with the reason; the
//! replicants alone say that no core node is running.
//!
//! The role is set with `ROLLCALL_NODE__ROLE=replicant` (the `node.role`
//! key).
//!
//! Addresses 127.0.14.x belong to this file (other test files use other
//! ranges, so they run in parallel).
#![cfg(feature = "cli")]

mod common;

use std::time::Duration;

use common::{logs, names, text, wait_until, AgentProc, Spec, TempDir};
use rollcall::core::Role;

fn replicant(spec: Spec) -> Spec {
    Spec {
        env: vec![("ROLLCALL_NODE__ROLE".into(), "replicant".into())],
        ..spec
    }
}

#[test]
fn three_cores_and_two_replicants_form_one_cluster_and_replicants_refuse_join() {
    let dir = TempDir::new("agent_roles");
    let cores: Vec<String> = (2..=4).map(|i| format!("rc@127.0.14.{i}")).collect();
    let replicants: Vec<String> = (5..=6).map(|i| format!("rc@127.0.14.{i}")).collect();
    let all: Vec<String> = cores.iter().chain(&replicants).cloned().collect();
    let mut agents: Vec<AgentProc> = cores
        .iter()
        .map(|name| AgentProc::start(dir.path(), &Spec::with_seeds(name, &cores)))
        .collect();
    agents.extend(
        replicants
            .iter()
            .map(|name| AgentProc::start(dir.path(), &replicant(Spec::with_seeds(name, &cores)))),
    );
    let formed = wait_until(Duration::from_secs(20), || {
        agents
            .iter()
            .all(|a| a.status().is_some_and(|s| names(&s.running_nodes) == all))
    });
    assert!(
        formed,
        "the five agents did not form\n{}",
        logs(&agents.iter().collect::<Vec<_>>())
    );

    // Every node knows every node's role.
    for a in &agents {
        let s = a.status().unwrap();
        for name in &all {
            let want = if cores.contains(name) {
                Role::Core
            } else {
                Role::Replicant
            };
            let role = s.roles.iter().find(|(n, _)| n.to_string() == *name);
            assert_eq!(role.map(|(_, r)| *r), Some(want), "{name} at {}", a.name);
        }
        assert!(!s.no_core_running);
    }
    let out = agents[4].ctl(&["cluster", "status", "--verbose"]);
    let table = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        table.lines().nth(1).unwrap_or("").contains("ROLE"),
        "{table}"
    );
    assert!(table.contains("replicant"), "{table}");

    // A replicant refuses an explicit join.
    let out = agents[3].ctl(&["cluster", "join", "rc@127.0.14.2"]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("replicants join through automatic discovery only"),
        "{}",
        text(&out)
    );

    // The core nodes stop: the replicants say no core node is running.
    for a in agents.drain(..3) {
        drop(a);
    }
    let said = wait_until(Duration::from_secs(60), || {
        agents
            .iter()
            .all(|a| a.status().is_some_and(|s| s.no_core_running))
    });
    assert!(
        said,
        "the replicants did not report that no core node runs\n{}",
        logs(&agents.iter().collect::<Vec<_>>())
    );
    let out = agents[0].ctl(&["cluster", "status"]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("no core node is running"),
        "{}",
        text(&out)
    );
}
