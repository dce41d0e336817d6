//! The library over real UDP: N nodes (200 by default) in one process, on one
//! single-threaded tokio runtime, each bound to its own loopback address
//! (`rc@127.0.R.1` .. `rc@127.0.R.N`, one port by the name convention), all
//! joining through the first one (static seeds = [the first node]).
//!
//! Each run starts the seed and the other nodes one after another as fast as
//! `Agent::start` returns, then measures the time from the last start until
//! every node counts N - 1 active members (polled every 50 ms through
//! `AgentHandle::num_members`, a watch: no round trip to the nodes), and
//! confirms it with every node's `status()` listing N running nodes. A run
//! that has not converged within `--timeout` is reported as not converged,
//! with the fraction of (node, member) pairs seen. Every node is stopped
//! before the next run, which uses the next /24 (127.0.R+1.x) so no stale
//! datagram can reach it.
//!
//! ```text
//! cargo bench --bench udp_join -- [--profile local|lan] [--runs 5] [--nodes 200]
//!     [--timeout 60] [--subnet 20] [--port 4370]
//! ```
//!
//! Prints one line a run (the time, when 90 % and 99 % of the (node, member)
//! pairs were seen, the process's CPU time and RSS), the median, and the
//! process's peak RSS. Exits 1 if a run did not converge. The memberlist
//! counterpart is `bench/memberlist_join/`; results are in BENCHMARKS.md.

use std::net::{IpAddr, Ipv4Addr};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use rollcall::core::{Cookie, Profile};
use rollcall::runtime::{Agent, AgentConfig, AgentHandle, DiscoveryStrategy};

struct Options {
    profile: Profile,
    runs: usize,
    nodes: usize,
    timeout: Duration,
    subnet: u8,
    port: u16,
}

fn usage() -> String {
    "usage: udp_join [--profile local|lan] [--runs K] [--nodes N] [--timeout SECS] \
     [--subnet S] [--port P]"
        .to_owned()
}

fn parse_args() -> Result<Options, String> {
    let mut o = Options {
        profile: Profile::Local,
        runs: 5,
        nodes: 200,
        timeout: Duration::from_secs(60),
        subnet: 20,
        port: 4370,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        // `cargo bench` passes `--bench` to every harness-less bench.
        if arg == "--bench" {
            continue;
        }
        let mut value = || args.next().ok_or_else(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--profile" => {
                o.profile = match value()?.as_str() {
                    "local" => Profile::Local,
                    "lan" => Profile::Lan,
                    other => return Err(format!("unknown profile {other} (local or lan)")),
                }
            }
            "--runs" => o.runs = value()?.parse().map_err(|e| format!("--runs: {e}"))?,
            "--nodes" => o.nodes = value()?.parse().map_err(|e| format!("--nodes: {e}"))?,
            "--timeout" => {
                let secs: f64 = value()?.parse().map_err(|e| format!("--timeout: {e}"))?;
                o.timeout = Duration::from_secs_f64(secs);
            }
            "--subnet" => o.subnet = value()?.parse().map_err(|e| format!("--subnet: {e}"))?,
            "--port" => o.port = value()?.parse().map_err(|e| format!("--port: {e}"))?,
            "-h" | "--help" => return Err(usage()),
            other => return Err(format!("unknown argument {other}\n{}", usage())),
        }
    }
    if !(2..=254).contains(&o.nodes) {
        return Err("--nodes must be 2..=254 (one loopback address each)".to_owned());
    }
    if o.runs == 0 || usize::from(o.subnet) + o.runs > 256 {
        return Err("--runs must be at least 1, and --subnet + --runs at most 256".to_owned());
    }
    Ok(o)
}

/// What one run measured.
struct Run {
    /// From the last start until all saw all; `None` if not within the timeout.
    converged: Option<Duration>,
    /// From the first start until the last start returned.
    start_all: Duration,
    /// When 90 % and 99 % of the (node, member) pairs were seen.
    milestones: [Option<Duration>; 2],
    /// Seen (node, member) pairs over N * (N - 1), when the run ended.
    fraction: f64,
    /// Nodes that saw all the others, when the run ended.
    complete: usize,
    /// Whether every node's `status()` listed N running nodes at the end.
    status_ok: bool,
    /// CPU time the process spent from the first start until convergence.
    cpu: Duration,
    /// Process RSS when the run ended, KiB.
    rss_kib: u64,
    /// Nodes that did not stop cleanly within 2 s.
    stop_failures: usize,
}

/// The process's CPU time (user + system), from /proc/self/stat, in clock
/// ticks of 10 ms (Linux's USER_HZ is 100 on every common architecture).
fn cpu_time() -> Duration {
    let ticks = std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            // Fields after the command name (which may hold spaces): state is
            // the 3rd field, utime the 14th and stime the 15th.
            let rest = &s[s.rfind(')')? + 2..];
            let f: Vec<&str> = rest.split_whitespace().collect();
            Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
        })
        .unwrap_or(0);
    Duration::from_millis(ticks * 10)
}

fn proc_status_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

fn config(
    o: &Options,
    subnet: u8,
    host: u8,
    seed: Option<&AgentConfig>,
) -> Result<AgentConfig, String> {
    let ip = IpAddr::V4(Ipv4Addr::new(127, 0, subnet, host));
    let name = format!("rc@{ip}").parse().map_err(|e| format!("{e}"))?;
    let mut c = AgentConfig::new(name);
    c.cookie = Cookie::new("udp_join bench cookie");
    c.profile = o.profile;
    c.base_port = o.port;
    c.expected_size = u32::try_from(o.nodes).unwrap_or(u32::MAX);
    if let Some(seed) = seed {
        c.discovery = DiscoveryStrategy::Static {
            seeds: vec![seed.name.clone()],
        };
    }
    Ok(c)
}

async fn run_once(o: &Options, subnet: u8) -> Result<Run, String> {
    let n = o.nodes;
    let seed_config = config(o, subnet, 1, None)?;
    let mut configs = vec![seed_config.clone()];
    for host in 2..=n {
        let host = u8::try_from(host).map_err(|e| e.to_string())?;
        configs.push(config(o, subnet, host, Some(&seed_config))?);
    }

    let mut agents: Vec<Agent> = Vec::with_capacity(n);
    let cpu_start = cpu_time();
    let first = Instant::now();
    for c in configs {
        let name = c.name.clone();
        agents.push(
            Agent::start(c)
                .await
                .map_err(|e| format!("starting {name}: {e}"))?,
        );
    }
    let last = Instant::now();
    let handles: Vec<AgentHandle> = agents.iter().map(Agent::handle).collect();

    let target = n - 1;
    let deadline = last + o.timeout;
    let pairs = n * target;
    // When the seen (node, member) pairs first reached 90 % and 99 %.
    let mut milestones: [Option<Duration>; 2] = [None, None];
    let converged = loop {
        let seen: usize = handles.iter().map(|h| h.num_members().min(target)).sum();
        for (m, share) in milestones.iter_mut().zip([0.90, 0.99]) {
            if m.is_none() && seen as f64 >= share * pairs as f64 {
                *m = Some(last.elapsed());
            }
        }
        if seen == pairs {
            break Some(last.elapsed());
        }
        if Instant::now() >= deadline {
            break None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };

    let cpu = cpu_time().saturating_sub(cpu_start);
    let seen: usize = handles.iter().map(|h| h.num_members().min(target)).sum();
    let complete = handles.iter().filter(|h| h.num_members() >= target).count();
    let mut status_ok = true;
    for h in &handles {
        match h.status().await {
            Ok(s) if s.running_nodes.len() == n => {}
            _ => status_ok = false,
        }
    }
    let rss_kib = proc_status_kib("VmRSS:");

    drop(handles);
    let mut stop_failures = 0;
    for agent in agents.into_iter().rev() {
        if agent.stop(false, Duration::from_secs(2)).await.is_err() {
            stop_failures += 1;
        }
    }

    Ok(Run {
        converged,
        start_all: last - first,
        milestones,
        fraction: seen as f64 / pairs as f64,
        complete,
        status_ok,
        cpu,
        rss_kib,
        stop_failures,
    })
}

fn secs(d: Duration) -> String {
    format!("{:.3} s", d.as_secs_f64())
}

async fn bench(o: Options) -> Result<bool, String> {
    let profile = match o.profile {
        Profile::Local => "local",
        Profile::Lan => "lan",
        Profile::Wan => "wan",
    };
    println!(
        "udp_join: {} nodes, profile {profile}, {} runs, timeout {}, one current-thread tokio runtime",
        o.nodes,
        o.runs,
        secs(o.timeout)
    );
    let mut times = Vec::new();
    let mut all_converged = true;
    for r in 0..o.runs {
        let subnet = o.subnet + u8::try_from(r).map_err(|e| e.to_string())?;
        let run = run_once(&o, subnet).await?;
        let result = match run.converged {
            Some(t) => {
                times.push(t);
                let at = |m: Option<Duration>| m.map_or("-".to_owned(), secs);
                format!(
                    "converged in {} (90 % of pairs at {}, 99 % at {})",
                    secs(t),
                    at(run.milestones[0]),
                    at(run.milestones[1])
                )
            }
            None => {
                all_converged = false;
                format!(
                    "NOT converged within {}: {:.4} of pairs seen, {}/{} nodes complete",
                    secs(o.timeout),
                    run.fraction,
                    run.complete,
                    o.nodes
                )
            }
        };
        println!(
            "run {} (127.0.{subnet}.x): {result} after the last start (starting all took {}); \
             status check {}; CPU {}; RSS {:.1} MiB; {} nodes failed to stop",
            r + 1,
            secs(run.start_all),
            if run.status_ok { "ok" } else { "FAILED" },
            secs(run.cpu),
            run.rss_kib as f64 / 1024.0,
            run.stop_failures
        );
        // Let the closed sockets' last datagrams drain before the next run.
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    times.sort();
    let median = if times.len() == o.runs {
        let mid = times.len() / 2;
        Some(if times.len() % 2 == 1 {
            times[mid]
        } else {
            (times[mid - 1] + times[mid]) / 2
        })
    } else {
        None
    };
    match median {
        Some(m) => println!("median of {} runs: {}", o.runs, secs(m)),
        None => println!(
            "median: not defined, {} of {} runs did not converge",
            o.runs - times.len(),
            o.runs
        ),
    }
    println!(
        "process RSS now {:.1} MiB, peak {:.1} MiB",
        proc_status_kib("VmRSS:") as f64 / 1024.0,
        proc_status_kib("VmHWM:") as f64 / 1024.0
    );
    Ok(all_converged)
}

fn main() -> ExitCode {
    let options = match parse_args() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("cannot build the tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(bench(options)) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("udp_join: {e}");
            ExitCode::FAILURE
        }
    }
}
