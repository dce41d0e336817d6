//! The Prometheus endpoint and `rollcall ctl stats` on real agents: a
//! scrape parsed by a Prometheus text parser, the same counters through the
//! control socket, nothing listening without `[metrics]`, and clear errors
//! for a bad or busy `metrics.listen`.
//!
//! Addresses 127.0.3.40 to 127.0.3.46, gossip on base_port 24470 and
//! metrics on port 24479, belong to this file (scripts/bench-metrics uses
//! .47 to .49 the same way; the rest of 127.0.3.x is tests/agent_ctl.rs's,
//! on the common base port).
#![cfg(all(feature = "cli", feature = "metrics"))]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use common::{assert_all_see, logs, text, wait_until, AgentProc, Spec, TempDir};
use prometheus_parse::{Scrape, Value};
use rollcall::runtime::AgentStats;

const BASE_PORT: &str = "24470";
const METRICS_PORT: u16 = 24479;

/// An agent of this file: its own base port, metrics on `metrics` if given.
fn spec(name: &str, seeds: &[String], metrics: Option<&str>) -> Spec {
    let mut spec = Spec::with_seeds(name, seeds);
    spec.env
        .push(("ROLLCALL_CLUSTER__BASE_PORT".into(), BASE_PORT.into()));
    if let Some(listen) = metrics {
        spec.extra = format!("[metrics]\nlisten = {listen:?}\n");
    }
    spec
}

/// Sends `request` as it is and returns the whole answer (the server
/// closes after one), within 5 s.
fn http(addr: SocketAddr, request: &str) -> String {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut answer = Vec::new();
    // A refused request may end in a reset after the answer: keep what came.
    let _ = stream.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).into_owned()
}

fn get(addr: SocketAddr, path: &str) -> String {
    http(
        addr,
        &format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: test\r\n\r\n"),
    )
}

fn status_line(answer: &str) -> &str {
    answer.lines().next().unwrap_or_default()
}

/// The samples of a scrape by metric name and label text (`state=alive`).
fn samples(scrape: &Scrape) -> BTreeMap<(String, String), Value> {
    scrape
        .samples
        .iter()
        .map(|s| {
            let mut labels: Vec<String> =
                s.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
            labels.sort();
            ((s.metric.clone(), labels.join(",")), s.value.clone())
        })
        .collect()
}

/// The TCP ports process `pid` listens on (from /proc: its socket inodes
/// matched against the listening sockets of /proc/net/tcp and tcp6).
fn tcp_listen_ports(pid: u32) -> BTreeSet<u16> {
    let inodes: BTreeSet<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter_map(|l| {
            let l = l.to_string_lossy().into_owned();
            Some(l.strip_prefix("socket:[")?.strip_suffix(']')?.to_owned())
        })
        .collect();
    let mut ports = BTreeSet::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let text = std::fs::read_to_string(table).unwrap_or_default();
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            // local_address is HEX_IP:HEX_PORT; st 0A is LISTEN; f[9] the inode.
            if f.len() > 9 && f[3] == "0A" && inodes.contains(f[9]) {
                let port = f[1].rsplit(':').next().unwrap_or_default();
                ports.insert(u16::from_str_radix(port, 16).unwrap());
            }
        }
    }
    ports
}

#[test]
fn a_scrape_of_a_running_agent_parses_as_prometheus_text_with_the_cluster_in_it() {
    let dir = TempDir::new("agent_metrics_scrape");
    let seeds: Vec<String> = (40..=42).map(|i| format!("rc@127.0.3.{i}")).collect();
    let listen = format!("127.0.3.40:{METRICS_PORT}");
    let agents: Vec<AgentProc> = seeds
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let metrics = (i == 0).then_some(listen.as_str());
            AgentProc::start(dir.path(), &spec(name, &seeds, metrics))
        })
        .collect();
    assert_all_see(
        &agents,
        &seeds,
        Duration::from_secs(20),
        "the three agents did not form a cluster",
        String::new,
    );
    let addr: SocketAddr = listen.parse().unwrap();
    let all = || logs(&agents.iter().collect::<Vec<_>>());

    // Only the agent with [metrics] listens on TCP, on that port alone.
    assert_eq!(
        tcp_listen_ports(agents[0].pid()),
        BTreeSet::from([METRICS_PORT])
    );
    assert!(tcp_listen_ports(agents[1].pid()).is_empty());

    let answer = get(addr, "/metrics");
    assert_eq!(status_line(&answer), "HTTP/1.1 200 OK", "{answer}");
    let (head, body) = answer.split_once("\r\n\r\n").unwrap();
    assert!(
        head.contains("Content-Type: text/plain; version=0.0.4; charset=utf-8"),
        "{head}"
    );
    assert!(
        head.contains(&format!("Content-Length: {}", body.len())),
        "{head}"
    );
    let scrape = Scrape::parse(body.lines().map(|l| Ok(l.to_owned()))).unwrap();
    // Every sample line parsed: the parser skips what it cannot read.
    let sample_lines = body
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .count();
    assert_eq!(scrape.samples.len(), sample_lines, "{body}");
    let s = samples(&scrape);
    let value = |name: &str, labels: &str| {
        s.get(&(name.to_owned(), labels.to_owned()))
            .cloned()
            .unwrap_or_else(|| panic!("no sample {name}{{{labels}}} in\n{body}"))
    };
    // Names, types and label sets.
    for (name, labels) in [
        ("rollcall_members", "state=alive"),
        ("rollcall_members", "state=suspect"),
        ("rollcall_members", "state=down"),
        ("rollcall_node_incarnation", ""),
        ("rollcall_node_generation", ""),
        ("rollcall_node_renewal", ""),
        ("rollcall_local_health", ""),
        ("rollcall_connections_open", ""),
    ] {
        assert!(
            matches!(value(name, labels), Value::Gauge(_)),
            "{name} is not a gauge"
        );
    }
    for (name, labels) in [
        ("rollcall_probes_sent_total", ""),
        ("rollcall_probes_failed_total", ""),
        ("rollcall_suspicions_raised_total", "cause=probe"),
        ("rollcall_suspicions_raised_total", "cause=network_evidence"),
        ("rollcall_suspicions_refuted_total", ""),
        ("rollcall_members_declared_down_total", ""),
        ("rollcall_datagrams_received_total", ""),
        ("rollcall_datagrams_sent_total", ""),
        ("rollcall_received_bytes_total", ""),
        ("rollcall_sent_bytes_total", ""),
        ("rollcall_datagrams_dropped_total", "reason=bad_seal"),
        ("rollcall_datagrams_dropped_total", "reason=too_short"),
        ("rollcall_datagrams_dropped_total", "reason=other_cluster"),
        ("rollcall_datagrams_dropped_total", "reason=too_large"),
        ("rollcall_datagrams_unsent_total", "reason=send_error"),
        ("rollcall_port_unreachable_total", ""),
        ("rollcall_sync_rounds_total", ""),
        ("rollcall_sync_datagrams_sent_total", ""),
        ("rollcall_sync_sent_bytes_total", ""),
        ("rollcall_autoheal_runs_total", "outcome=won"),
        ("rollcall_autoheal_runs_total", "outcome=lost"),
        ("rollcall_autoclean_removals_total", ""),
        ("rollcall_discovery_runs_total", "strategy=static"),
        ("rollcall_discovery_failures_total", "strategy=static"),
    ] {
        assert!(
            matches!(value(name, labels), Value::Counter(_)),
            "{name} is not a counter"
        );
    }
    // Values: the two others alive, traffic both ways, discovery asked.
    assert_eq!(value("rollcall_members", "state=alive"), Value::Gauge(2.0));
    assert_eq!(value("rollcall_members", "state=down"), Value::Gauge(0.0));
    let positive = |name: &str, labels: &str| match value(name, labels) {
        Value::Counter(v) | Value::Gauge(v) => v > 0.0,
        _ => false,
    };
    for (name, labels) in [
        ("rollcall_datagrams_received_total", ""),
        ("rollcall_datagrams_sent_total", ""),
        ("rollcall_received_bytes_total", ""),
        ("rollcall_sync_rounds_total", ""),
        ("rollcall_node_generation", ""),
        ("rollcall_discovery_runs_total", "strategy=static"),
    ] {
        assert!(positive(name, labels), "{name} is 0 in\n{body}");
    }
    assert!(scrape.docs.contains_key("rollcall_members"));

    // Counters only grow between scrapes.
    let received = |s: &BTreeMap<(String, String), Value>| match s
        .get(&("rollcall_datagrams_received_total".into(), String::new()))
    {
        Some(Value::Counter(v)) => *v,
        other => panic!("{other:?}"),
    };
    let first = received(&s);
    let grew = wait_until(Duration::from_secs(10), || {
        let answer = get(addr, "/metrics");
        let body = answer.split_once("\r\n\r\n").unwrap().1;
        let scrape = Scrape::parse(body.lines().map(|l| Ok(l.to_owned()))).unwrap();
        received(&samples(&scrape)) > first
    });
    assert!(grew, "datagrams received did not grow\n{}", all());

    // Only GET and HEAD of /metrics; anything else is refused, never a hang.
    assert_eq!(status_line(&get(addr, "/")), "HTTP/1.1 404 Not Found");
    let head = http(
        addr,
        &format!("HEAD /metrics HTTP/1.1\r\nHost: {addr}\r\n\r\n"),
    );
    assert_eq!(status_line(&head), "HTTP/1.1 200 OK");
    assert!(head.ends_with("\r\n\r\n"), "HEAD answered a body: {head}");
    let post = http(
        addr,
        &format!("POST /metrics HTTP/1.1\r\nHost: {addr}\r\n\r\n"),
    );
    assert_eq!(status_line(&post), "HTTP/1.1 405 Method Not Allowed");
    for bad in [
        "hello\r\n\r\n".to_owned(),
        "GET /metrics HTTP/1.1\r\n\r\n".to_owned(),
        format!(
            "GET /metrics HTTP/1.1\r\nHost: x\r\nX: {}\r\n\r\n",
            "a".repeat(9000)
        ),
    ] {
        assert_eq!(
            status_line(&http(addr, &bad)),
            "HTTP/1.1 400 Bad Request",
            "{:.40}",
            bad
        );
    }

    // The same counters through the control socket, as text and as JSON.
    let out = agents[0].ctl(&["stats"]);
    assert!(out.status.success(), "{}", text(&out));
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(
        printed.contains("members: alive 2, suspect 0, down 0"),
        "{printed}"
    );
    assert!(printed.contains("discovery (static): runs "), "{printed}");
    let out = agents[1].ctl(&["stats", "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    let stats: AgentStats = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(stats.members.alive, 2, "{stats:?}");
    assert!(stats.node.datagrams_received > 0, "{stats:?}");
    assert!(stats.generation > 0, "{stats:?}");
    assert_eq!(stats.discovery.strategy, "static");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim().lines().count(),
        1
    );

    // The metrics port is the endpoint's: after SIGTERM it is free again.
    let mut first_agent = agents.into_iter().next().unwrap();
    assert!(first_agent
        .signal_and_wait("TERM", Duration::from_secs(10))
        .is_some_and(|s| s.success()));
    assert!(TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_err());
}

#[test]
fn without_a_metrics_table_the_agent_listens_on_no_tcp_port() {
    let dir = TempDir::new("agent_metrics_absent");
    let name = "rc@127.0.3.45".to_owned();
    let agent = AgentProc::start(dir.path(), &spec(&name, std::slice::from_ref(&name), None));
    assert!(
        wait_until(Duration::from_secs(10), || agent.status().is_some()),
        "the agent did not start\n{}",
        agent.log()
    );
    assert_eq!(tcp_listen_ports(agent.pid()), BTreeSet::new());
    // Nor on the port this file's metrics use, at its address.
    let addr: SocketAddr = format!("127.0.3.45:{METRICS_PORT}").parse().unwrap();
    assert!(TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_err());
    // ctl stats answers all the same.
    let out = agent.ctl(&["stats"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("members: alive 0"));
}

#[test]
fn a_bad_or_busy_metrics_listen_address_stops_the_agent_naming_metrics_listen() {
    let dir = TempDir::new("agent_metrics_refused");
    let name = "rc@127.0.3.46".to_owned();
    for bad in ["localhost:9100", "127.0.3.46"] {
        let mut agent = AgentProc::start(
            dir.path(),
            &spec(&name, std::slice::from_ref(&name), Some(bad)),
        );
        let status = agent.wait_exit(Duration::from_secs(10));
        assert!(status.is_some_and(|s| !s.success()), "{}", agent.log());
        let log = agent.log();
        assert!(log.contains("metrics.listen: "), "{log}");
        assert!(log.contains(bad), "{log}");
    }
    // A port another process holds: the agent says so and exits.
    let busy = TcpListener::bind(("127.0.3.46", METRICS_PORT)).unwrap();
    let listen = busy.local_addr().unwrap().to_string();
    let mut agent = AgentProc::start(
        dir.path(),
        &spec(&name, std::slice::from_ref(&name), Some(listen.as_str())),
    );
    let status = agent.wait_exit(Duration::from_secs(10));
    assert!(status.is_some_and(|s| !s.success()), "{}", agent.log());
    let log = agent.log();
    assert!(
        log.contains(&format!(
            "cannot listen for metrics on {listen} (metrics.listen)"
        )),
        "{log}"
    );
}
