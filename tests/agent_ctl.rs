//! `rollcall ctl` and `rollcall agent` fail with one clear line and a
//! non-zero exit: no agent running, unreachable or malformed nodes, a bad
//! config file, a discovery table missing its required key. And a manual join works.
//!
//! Addresses 127.0.3.x belong to this file.
#![cfg(feature = "cli")]

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{ctl, logs, names, text, wait_until, AgentProc, Spec, TempDir, BIN};

fn one_error_line(out: &std::process::Output) -> String {
    assert!(!out.status.success(), "expected a failure: {}", text(out));
    let err = String::from_utf8_lossy(&out.stderr).trim().to_owned();
    assert_eq!(err.lines().count(), 1, "not one line: {err:?}");
    assert!(err.starts_with("error: "), "{err}");
    err
}

#[test]
fn ctl_without_a_running_agent_says_so_in_one_line() {
    let dir = TempDir::new("agent_ctl_none");
    let out = ctl(dir.path(), &["cluster", "status"]);
    let err = one_error_line(&out);
    assert!(err.contains("the agent is not running"), "{err}");

    // A socket file with nothing behind it (an agent that was SIGKILLed).
    let path = dir.path().join("rollcall.sock");
    drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
    let err = one_error_line(&ctl(dir.path(), &["cluster", "status"]));
    assert!(err.contains("the agent is not running"), "{err}");
}

#[test]
fn two_manual_agents_join_and_bad_joins_fail_clearly() {
    let dir = TempDir::new("agent_ctl_manual");
    let a = AgentProc::start(dir.path(), &Spec::manual("rc@127.0.3.2"));
    let b = AgentProc::start(dir.path(), &Spec::manual("rc@127.0.3.3"));
    assert!(
        wait_until(Duration::from_secs(10), || a.status().is_some()
            && b.status().is_some()),
        "agents did not start\n{}",
        logs(&[&a, &b])
    );
    // Manual: nobody joins by themselves.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(names(&a.status().unwrap().running_nodes), ["rc@127.0.3.2"]);

    let err = one_error_line(&b.ctl(&["cluster", "join", "not-a-node"]));
    assert!(err.contains("bad node name"), "{err}");
    let err = one_error_line(&b.ctl(&["cluster", "force-leave", "rc@127.0.3.99"]));
    assert!(err.contains("unknown node rc@127.0.3.99"), "{err}");
    let err = one_error_line(&b.ctl(&["cluster", "join", "rc@no-such-host.invalid"]));
    assert!(
        err.contains("unknown node rc@no-such-host.invalid"),
        "{err}"
    );

    // Nothing listens at 127.0.3.9: the join sees no member and says so.
    let started = Instant::now();
    let err = one_error_line(&b.ctl(&["cluster", "join", "rc@127.0.3.9"]));
    assert!(err.contains("unreachable node rc@127.0.3.9"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(10));

    let out = b.ctl(&["cluster", "join", "rc@127.0.3.2"]);
    assert!(out.status.success(), "{}", text(&out));
    let both = ["rc@127.0.3.2", "rc@127.0.3.3"];
    assert!(
        wait_until(Duration::from_secs(10), || {
            [&a, &b]
                .iter()
                .all(|x| x.status().is_some_and(|s| names(&s.running_nodes) == both))
        }),
        "{}",
        logs(&[&a, &b])
    );
    // Human and JSON status.
    let out = a.ctl(&["cluster", "status"]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "Cluster status: running_nodes: ['rc@127.0.3.2','rc@127.0.3.3'] stopped_nodes: []"
    );
    let out = a.ctl(&["cluster", "status", "--json"]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        r#"{"running_nodes":["rc@127.0.3.2","rc@127.0.3.3"],"stopped_nodes":[],"roles":{"rc@127.0.3.2":"core","rc@127.0.3.3":"core"}}"#
    );

    // force-leave removes b: a lists it nowhere.
    let out = a.ctl(&["cluster", "force-leave", "rc@127.0.3.3"]);
    assert!(out.status.success(), "{}", text(&out));
    let s = a.status().unwrap();
    assert_eq!(names(&s.running_nodes), ["rc@127.0.3.2"], "{s}");
    assert!(s.stopped_nodes.is_empty(), "{s}");
}

fn agent_with(dir: &std::path::Path, toml: &str, env: &[(&str, &str)]) -> std::process::Output {
    let config = dir.join("agent.toml");
    std::fs::write(&config, toml).unwrap();
    let mut child = Command::new(BIN)
        .args(["agent", "--config"])
        .arg(&config)
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // A config that wrongly starts an agent must not hang the test.
    let end = Instant::now() + Duration::from_secs(10);
    while child.try_wait().unwrap().is_none() && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    child.wait_with_output().unwrap()
}

#[test]
fn an_agent_with_a_bad_config_exits_naming_the_key() {
    let dir = TempDir::new("agent_ctl_config");
    let data = format!("[node]\ndata_dir = {:?}\n", dir.path().join("d"));
    let err = one_error_line(&agent_with(
        dir.path(),
        &format!("{data}[cluster]\nautoclean = \"24x\"\n"),
        &[],
    ));
    assert!(
        err.contains("cluster.autoclean: invalid duration \"24x\""),
        "{err}"
    );
    let err = one_error_line(&agent_with(dir.path(), "[cluster]\ncolour = 1\n", &[]));
    assert!(err.contains("cluster.colour: unknown field"), "{err}");
    let err = one_error_line(&agent_with(
        dir.path(),
        &data,
        &[("ROLLCALL_NODE__NAME", "nohost")],
    ));
    assert!(
        err.contains("ROLLCALL_NODE__NAME: node.name: \"nohost\" has no '@host' part"),
        "{err}"
    );
    let err = one_error_line(&agent_with(
        dir.path(),
        &data,
        &[("ROLLCALL_CLUSTER__DISCOVERY_STRATEGY", "static")],
    ));
    assert!(err.contains("cluster.static.seeds"), "{err}");
    let err = one_error_line(&agent_with(
        dir.path(),
        &format!("{data}[cluster]\ndiscovery_strategy = \"etcd\"\n"),
        &[],
    ));
    assert!(
        err.ends_with(
            "agent.toml: cluster.etcd.server: is required when cluster.discovery_strategy is \"etcd\""
        ),
        "{err}"
    );
    let err = one_error_line(&agent_with(
        dir.path(),
        &format!(
            "{data}[cluster]\nproto_dist = \"quic\"\n[cluster.quic]\n\
             certfile = \"/nonexistent/node.pem\"\nkeyfile = \"/nonexistent/node.key\"\n\
             cacertfile = \"/nonexistent/ca.pem\"\n"
        ),
        &[],
    ));
    assert!(
        err.contains("cluster.quic.certfile") && err.contains("/nonexistent/node.pem"),
        "{err}"
    );
}

#[test]
fn the_default_cookie_works_but_logs_a_warning() {
    let dir = TempDir::new("agent_ctl_cookie");
    let spec = Spec {
        cookie: rollcall::core::config::DEFAULT_COOKIE.to_owned(),
        ..Spec::manual("rc@127.0.3.20")
    };
    let a = AgentProc::start(dir.path(), &spec);
    assert!(
        wait_until(Duration::from_secs(10), || a.status().is_some()),
        "{}",
        a.log()
    );
    assert!(a.log().contains("default cookie"), "{}", a.log());
}
