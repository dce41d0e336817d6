//! Five real agents with static seeds form a cluster; a sixth joins by hand;
//! a SIGKILLed one shows as stopped everywhere; one that leaves, or gets
//! SIGTERM, drops out of the others' running nodes.
//!
//! Addresses 127.0.1.x belong to this file (other test files use other
//! ranges, so they run in parallel).
#![cfg(feature = "cli")]

mod common;

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use common::{logs, names, text, wait_until, AgentProc, Spec, TempDir};

#[test]
fn five_static_agents_form_a_cluster_and_report_crashes_leaves_and_joins() {
    let dir = TempDir::new("agent_static");
    let seeds: Vec<String> = (2..=6).map(|i| format!("rc@127.0.1.{i}")).collect();
    // Started in reverse order: the cluster must form whatever the order.
    let mut agents: Vec<AgentProc> = seeds
        .iter()
        .rev()
        .map(|name| AgentProc::start(dir.path(), &Spec::with_seeds(name, &seeds)))
        .collect();
    agents.reverse();
    let all = |a: &[AgentProc]| logs(&a.iter().collect::<Vec<_>>());

    // Everyone sees all five running.
    let formed = wait_until(Duration::from_secs(20), || {
        agents.iter().all(|a| {
            a.status()
                .is_some_and(|s| names(&s.running_nodes) == seeds && s.stopped_nodes.is_empty())
        })
    });
    assert!(
        formed,
        "the five agents did not all see each other\n{}",
        all(&agents)
    );

    // The control socket is for the agent's user only.
    let socket = agents[0].data_dir.join("rollcall.sock");
    let mode = std::fs::metadata(&socket).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "control socket mode {mode:o}");

    // A sixth node with manual discovery joins by `cluster join`.
    let sixth = AgentProc::start(dir.path(), &Spec::manual("rc@127.0.1.7"));
    let mut joined = None;
    // Its control socket appears within moments of the start.
    wait_until(Duration::from_secs(10), || {
        let out = sixth.ctl(&["cluster", "join", "rc@127.0.1.2"]);
        let ok = out.status.success();
        joined = Some(out);
        ok
    });
    let out = joined.unwrap();
    assert!(out.status.success(), "join failed: {}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("Join the cluster successfully."),
        "{}",
        text(&out)
    );
    let six: Vec<String> = (2..=7).map(|i| format!("rc@127.0.1.{i}")).collect();
    let with_sixth = wait_until(Duration::from_secs(15), || {
        agents
            .iter()
            .chain([&sixth])
            .all(|a| a.status().is_some_and(|s| names(&s.running_nodes) == six))
    });
    assert!(
        with_sixth,
        "not everyone saw the sixth node\n{}",
        all(&agents)
    );

    // Joining again while in a cluster is refused, on one line.
    let again = sixth.ctl(&["cluster", "join", "rc@127.0.1.3"]);
    assert!(!again.status.success());
    let err = String::from_utf8_lossy(&again.stderr);
    assert_eq!(
        err.trim(),
        "error: this node is already in a cluster; leave it first"
    );

    // SIGKILL: every other node reports it stopped.
    let dead = agents[4].name.clone();
    agents[4].kill();
    let reported = wait_until(Duration::from_secs(30), || {
        agents[..4].iter().chain([&sixth]).all(|a| {
            a.status().is_some_and(|s| {
                names(&s.stopped_nodes) == [dead.clone()]
                    && !names(&s.running_nodes).contains(&dead)
            })
        })
    });
    assert!(
        reported,
        "{dead} not reported stopped everywhere\n{}",
        all(&agents)
    );

    // `cluster leave`: the others list it nowhere.
    let leaver = agents[3].name.clone();
    let out = agents[3].ctl(&["cluster", "leave"]);
    assert!(out.status.success(), "leave failed: {}", text(&out));
    let left = wait_until(Duration::from_secs(15), || {
        agents[..3].iter().chain([&sixth]).all(|a| {
            a.status().is_some_and(|s| {
                // A node that left is in neither list (before issue 6 the
                // core showed it as stopped).
                !names(&s.running_nodes).contains(&leaver)
                    && !names(&s.stopped_nodes).contains(&leaver)
            })
        })
    });
    assert!(left, "{leaver} still running somewhere\n{}", all(&agents));

    // SIGTERM: the agent leaves and exits 0 within its deadline.
    let termed = agents[2].name.clone();
    let status = agents[2].signal_and_wait("TERM", Duration::from_secs(5));
    assert_eq!(
        status.and_then(|s| s.code()),
        Some(0),
        "SIGTERM did not end the agent cleanly\n{}",
        agents[2].log()
    );
    let gone = wait_until(Duration::from_secs(15), || {
        agents[..2].iter().chain([&sixth]).all(|a| {
            a.status()
                .is_some_and(|s| !names(&s.running_nodes).contains(&termed))
        })
    });
    assert!(gone, "{termed} still running somewhere\n{}", all(&agents));
    // Its control socket went with it.
    assert!(!agents[2].data_dir.join("rollcall.sock").exists());
}
