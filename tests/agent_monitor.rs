//! What an operator watches on running agents: `cluster status --verbose`
//! (each node's state, generation, address and since when), `monitor`
//! (events as JSON lines, live and replayed), and a node that left showing
//! only itself.
//!
//! Addresses 127.0.4.40 and up, on base port 24570, belong to this file.
#![cfg(feature = "cli")]

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{assert_all_see, logs, names, text, wait_until, AgentProc, Spec, TempDir, BIN};
use rollcall::core::{Liveness, Role};
use rollcall::runtime::monitor::{EventKind, MonitorLine};
use rollcall::runtime::verbose::VerboseStatus;

const BASE_PORT: &str = "24570";

/// A static-seed agent gossiping on this file's base port.
fn spec(name: &str, seeds: &[String]) -> Spec {
    let mut spec = Spec::with_seeds(name, seeds);
    spec.env
        .push(("ROLLCALL_CLUSTER__BASE_PORT".into(), BASE_PORT.into()));
    spec
}

fn names_at(octets: std::ops::RangeInclusive<u8>) -> Vec<String> {
    octets.map(|i| format!("rc@127.0.4.{i}")).collect()
}

/// A cluster of agents started on `names`, each seeded with all of them.
fn cluster(dir: &TempDir, names: &[String]) -> Vec<AgentProc> {
    let agents: Vec<AgentProc> = names
        .iter()
        .map(|n| AgentProc::start(dir.path(), &spec(n, names)))
        .collect();
    assert_all_see(
        &agents,
        names,
        Duration::from_secs(20),
        "the agents did not form a cluster",
        String::new,
    );
    agents
}

fn verbose(agent: &AgentProc) -> Option<VerboseStatus> {
    let out = agent.ctl(&["cluster", "status", "--verbose", "--json"]);
    if !out.status.success() {
        return None;
    }
    serde_json::from_slice(&out.stdout).ok()
}

fn ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).unwrap().as_millis() as u64
}

/// `rollcall ctl monitor` running against one agent, its lines read by a
/// thread; killed when dropped.
struct Monitor {
    child: Child,
    lines: mpsc::Receiver<String>,
    /// Every line read so far, for failure messages.
    seen: Vec<String>,
}

impl Monitor {
    /// Starts a monitor and waits until the agent has taken it.
    fn start(agent: &AgentProc, since_start: bool) -> Self {
        let before = agent.log().matches("monitor connected").count();
        let mut args = vec!["ctl", "--data-dir"];
        let dir = agent.data_dir.to_str().unwrap().to_owned();
        args.push(&dir);
        args.push("monitor");
        if since_start {
            args.push("--since-start");
        }
        let mut child = Command::new(BIN)
            .args(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start rollcall ctl monitor");
        let out = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        assert!(
            wait_until(Duration::from_secs(10), || {
                agent.log().matches("monitor connected").count() > before
            }),
            "the agent never took the monitor\n{}",
            agent.log()
        );
        Self {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// The next line that `wanted` accepts, within `within`; every line is
    /// checked to be one monitor event.
    fn until(&mut self, within: Duration, wanted: impl Fn(&MonitorLine) -> bool) -> MonitorLine {
        let end = Instant::now() + within;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            let line = match self.lines.recv_timeout(left) {
                Ok(line) => line,
                Err(_) => panic!(
                    "no such line within {within:?}; lines so far:\n{}",
                    self.seen.join("\n")
                ),
            };
            let parsed: MonitorLine = serde_json::from_str(&line)
                .unwrap_or_else(|e| panic!("not a monitor line ({e}): {line}"));
            self.seen.push(line);
            if wanted(&parsed) {
                return parsed;
            }
        }
    }

    /// Every line that arrives within `within`.
    fn drain(&mut self, within: Duration) -> Vec<MonitorLine> {
        let end = Instant::now() + within;
        let mut out = Vec::new();
        while let Ok(line) = self
            .lines
            .recv_timeout(end.saturating_duration_since(Instant::now()))
        {
            out.push(serde_json::from_str(&line).unwrap());
            self.seen.push(line);
        }
        out
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn about(line: &MonitorLine, kind: EventKind, node: &str) -> bool {
    line.event == kind && line.node.as_ref().is_some_and(|n| n.to_string() == node)
}

#[test]
fn status_verbose_shows_each_nodes_state_role_generation_address_and_since_when() {
    let dir = TempDir::new("agent_monitor_verbose");
    let started = SystemTime::now();
    let all = names_at(40..=42);
    let mut agents = cluster(&dir, &all);
    let a = &agents[0];
    let v = verbose(a).expect("no verbose status");
    assert_eq!(names(&v.status.running_nodes), all);
    assert!(v.status.stopped_nodes.is_empty());
    let listed: Vec<String> = v.members.iter().map(|m| m.node.to_string()).collect();
    assert_eq!(listed, all);
    let now = SystemTime::now();
    for m in &v.members {
        assert_eq!(m.state, Liveness::Alive, "{m:?}");
        assert_eq!(m.role, Role::Core, "{m:?}");
        // The generation is the agent's start time in ms.
        assert!(
            (ms(started) - 1000..=ms(now)).contains(&m.generation),
            "{m:?}"
        );
        assert_eq!(m.renewal, 0);
        let host = m.node.to_string().replace("rc@", "");
        assert_eq!(m.address.to_string(), format!("{host}:{BASE_PORT}"));
        let since = m.since.unwrap_or_else(|| panic!("no since: {m:?}"));
        assert!(
            since >= started - Duration::from_secs(1) && since <= now,
            "{m:?}"
        );
    }

    // The same as a table, under EMQX's line.
    let out = a.ctl(&["cluster", "status", "--verbose"]);
    let table = String::from_utf8_lossy(&out.stdout).into_owned();
    let rows: Vec<&str> = table.lines().collect();
    assert_eq!(
        rows[0],
        "Cluster status: running_nodes: ['rc@127.0.4.40','rc@127.0.4.41','rc@127.0.4.42'] stopped_nodes: []",
        "{table}"
    );
    let header: Vec<&str> = rows[1].split_whitespace().collect();
    assert_eq!(
        header,
        ["NODE", "STATE", "ROLE", "GENERATION", "ADDRESS", "SINCE"]
    );
    assert_eq!(rows.len(), 5, "{table}");
    for (row, name) in rows[2..].iter().zip(&all) {
        let cells: Vec<&str> = row.split_whitespace().collect();
        assert_eq!(cells[..3], [name.as_str(), "alive", "core"], "{table}");
        assert!(row.ends_with(" ago)"), "{table}");
    }

    // One killed: down on the others, since about when it died.
    let victim = agents.remove(2);
    let gone = victim.name.clone();
    let killed = SystemTime::now();
    drop(victim);
    let a = &agents[0];
    let down = wait_until(Duration::from_secs(30), || {
        verbose(a).is_some_and(|v| names(&v.status.stopped_nodes) == [gone.clone()])
    });
    assert!(down, "{gone} not down\n{}", logs(&[a]));
    let v = verbose(a).unwrap();
    let m = v
        .members
        .iter()
        .find(|m| m.node.to_string() == gone)
        .unwrap();
    assert_eq!(m.state, Liveness::Down);
    let since = m.since.expect("a down member without since");
    assert!(
        since >= killed && since <= SystemTime::now(),
        "down since {since:?}, killed at {killed:?}"
    );
    let out = a.ctl(&["cluster", "status", "--verbose"]);
    let table = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        table
            .lines()
            .any(|l| l.starts_with(&gone) && l.split_whitespace().nth(1) == Some("down")),
        "{table}"
    );
}

#[test]
fn monitor_prints_a_member_up_and_a_member_down_as_they_happen() {
    let dir = TempDir::new("agent_monitor_live");
    let all = names_at(44..=45);
    let mut a = AgentProc::start(dir.path(), &spec(&all[0], &all));
    assert!(
        wait_until(Duration::from_secs(10), || a.status().is_some()),
        "{}",
        a.log()
    );
    let mut monitor = Monitor::start(&a, false);
    let before = SystemTime::now();
    let mut b = AgentProc::start(dir.path(), &spec(&all[1], &all));
    let up = monitor.until(Duration::from_secs(20), |l| {
        about(l, EventKind::MemberUp, &all[1])
    });
    assert!(up.time >= before - Duration::from_millis(100) && up.time <= SystemTime::now());
    assert!(up.seq.is_some() && up.generation.is_some() && up.address.is_some());

    b.kill();
    let down = monitor.until(Duration::from_secs(30), |l| {
        about(l, EventKind::MemberDown, &all[1])
    });
    assert!(
        down.seq > up.seq && down.time >= up.time,
        "{down:?} after {up:?}"
    );
    assert!(
        monitor
            .seen
            .iter()
            .any(|l| l.contains(r#""event":"member_suspect""#)),
        "no member_suspect before member_down:\n{}",
        monitor.seen.join("\n")
    );

    // The agent stopping closes the socket: the monitor ends by itself.
    a.signal_and_wait("TERM", Duration::from_secs(10))
        .expect("the agent did not stop");
    let end = Instant::now() + Duration::from_secs(10);
    let exited = loop {
        if let Some(status) = monitor.child.try_wait().unwrap() {
            break Some(status);
        }
        if Instant::now() >= end {
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(
        exited.is_some_and(|s| s.success()),
        "the monitor did not end cleanly with the agent: {exited:?}"
    );
}

#[test]
fn monitor_since_start_replays_the_events_the_agent_saw_before_it_connected() {
    let dir = TempDir::new("agent_monitor_replay");
    let all = names_at(47..=48);
    let mut agents = cluster(&dir, &all);
    let gone = all[1].clone();
    agents.remove(1).kill();
    let a = &agents[0];
    assert!(
        wait_until(Duration::from_secs(30), || a
            .status()
            .is_some_and(|s| names(&s.stopped_nodes) == [gone.clone()])),
        "{}",
        a.log()
    );
    let mut monitor = Monitor::start(a, true);
    let replay = monitor.drain(Duration::from_secs(2));
    let kinds: Vec<EventKind> = replay.iter().map(|l| l.event).collect();
    let seqs: Vec<u64> = replay.iter().filter_map(|l| l.seq).collect();
    assert_eq!(seqs.first(), Some(&1), "{kinds:?}");
    assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "{seqs:?}");
    assert!(replay.windows(2).all(|w| w[0].time <= w[1].time));
    let up = replay
        .iter()
        .position(|l| about(l, EventKind::MemberUp, &gone))
        .unwrap_or_else(|| panic!("no member_up replayed: {kinds:?}"));
    let down = replay
        .iter()
        .position(|l| about(l, EventKind::MemberDown, &gone))
        .unwrap_or_else(|| panic!("no member_down replayed: {kinds:?}"));
    assert!(up < down, "{kinds:?}");
    assert!(kinds.contains(&EventKind::Joined), "{kinds:?}");
    assert!(!kinds.contains(&EventKind::HistoryDropped));

    // Without --since-start, nothing from before.
    let mut live = Monitor::start(a, false);
    assert_eq!(live.drain(Duration::from_secs(1)), []);
}

#[test]
fn after_leave_status_shows_only_this_node_until_it_joins_again() {
    let dir = TempDir::new("agent_monitor_leave");
    let all = names_at(50..=52);
    let agents = cluster(&dir, &all);
    let b = &agents[1];
    let out = b.ctl(&["cluster", "leave"]);
    assert!(out.status.success(), "{}", text(&out));
    let out = b.ctl(&["cluster", "status"]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "Cluster status: running_nodes: ['rc@127.0.4.51'] stopped_nodes: []"
    );
    let out = b.ctl(&["cluster", "status", "--json"]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        r#"{"running_nodes":["rc@127.0.4.51"],"stopped_nodes":[],"roles":{"rc@127.0.4.51":"core"}}"#
    );
    let v = verbose(b).unwrap();
    assert_eq!(v.members.len(), 1, "{v:?}");
    assert_eq!(v.members[0].node.to_string(), all[1]);
    // The others list it nowhere; it stays alone, though its seeds call.
    let others = [agents[0].name.clone(), agents[2].name.clone()];
    let gone = wait_until(Duration::from_secs(10), || {
        [&agents[0], &agents[2]].iter().all(|x| {
            x.status()
                .is_some_and(|s| names(&s.running_nodes) == others && s.stopped_nodes.is_empty())
        })
    });
    assert!(gone, "{}", logs(&agents.iter().collect::<Vec<_>>()));
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(names(&b.status().unwrap().running_nodes), [all[1].clone()]);

    // Joining again lists the cluster again.
    let out = b.ctl(&["cluster", "join", &all[0]]);
    assert!(out.status.success(), "{}", text(&out));
    assert_all_see(
        &agents,
        &all,
        Duration::from_secs(20),
        "the node that left did not join again",
        String::new,
    );
}
