//! Forged evidence: a stream of forged ICMP "port unreachable" messages,
//! claiming that a live agent's gossip port is closed, never makes that
//! agent stopped anywhere. Three agents share a network namespace; a second
//! namespace, joined to it by a veth pair, sends the forgeries from a raw
//! socket (a few lines of Python), to the other two agents, for 8 s.
//!
//! Needs root, `ip` (iproute2) and `python3`; `scripts/install-deps`
//! installs them. Without them the test fails and says so.
#![cfg(feature = "cli")]

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{assert_all_see, logs, names, AgentProc, Spec, TempDir};

fn addr(i: usize) -> String {
    format!("10.79.0.{}", 2 + i)
}

const ATTACKER: &str = "10.79.0.100";

/// The agents' namespace and the attacker's, joined by a veth pair; both
/// deleted on drop.
struct Net {
    prefix: String,
}

impl Net {
    fn new(agents: usize) -> Self {
        let net = Self {
            prefix: format!("rcf{}", std::process::id()),
        };
        let (a, x) = (net.agents(), net.attacker());
        common::run(&["ip", "netns", "add", &a]);
        common::run(&["ip", "netns", "add", &x]);
        common::run(&[
            "ip", "link", "add", "eth0", "netns", &a, "type", "veth", "peer", "name", "eth0",
            "netns", &x,
        ]);
        for i in 0..agents {
            common::run(&[
                "ip",
                "-n",
                &a,
                "addr",
                "add",
                &format!("{}/24", addr(i)),
                "dev",
                "eth0",
            ]);
        }
        common::run(&[
            "ip",
            "-n",
            &x,
            "addr",
            "add",
            &format!("{ATTACKER}/24"),
            "dev",
            "eth0",
        ]);
        for ns in [&a, &x] {
            common::run(&["ip", "-n", ns, "link", "set", "eth0", "up"]);
            common::run(&["ip", "-n", ns, "link", "set", "lo", "up"]);
        }
        net
    }

    fn agents(&self) -> String {
        format!("{}-a", self.prefix)
    }

    fn attacker(&self) -> String {
        format!("{}-x", self.prefix)
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        for ns in [self.agents(), self.attacker()] {
            let _ = Command::new("ip").args(["netns", "delete", &ns]).output();
        }
    }
}

/// Sends forged ICMP port-unreachable messages to each of `observers`
/// (ip, gossip port), each quoting a datagram from the observer to
/// `victim` (ip, port), 50 a second to each, for `secs` seconds.
const FORGE: &str = r#"
import socket, struct, sys, time
victim_ip, victim_port, secs = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
observers = [(a.split(":")[0], int(a.split(":")[1])) for a in sys.argv[4:]]
def csum(b):
    if len(b) % 2: b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    s = (s >> 16) + (s & 0xffff); s += s >> 16
    return (~s) & 0xffff
raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
end = time.time() + secs
sent = 0
while time.time() < end:
    for ip, port in observers:
        udp = struct.pack("!HHHH", port, victim_port, 8 + 32, 0)
        iph = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + 8 + 32, 1, 0, 64, 17, 0,
                          socket.inet_aton(ip), socket.inet_aton(victim_ip))
        iph = iph[:10] + struct.pack("!H", csum(iph)) + iph[12:]
        body = iph + udp
        icmp = struct.pack("!BBHI", 3, 3, 0, 0) + body
        icmp = icmp[:2] + struct.pack("!H", csum(icmp)) + icmp[4:]
        raw.sendto(icmp, (ip, 0))
        sent += 1
    time.sleep(0.02)
print(sent)
"#;

fn forge(net: &Net, victim: (&str, u16), observers: &[(String, u16)], secs: u64) -> Child {
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", &net.attacker(), "python3", "-c", FORGE])
        .arg(victim.0)
        .arg(victim.1.to_string())
        .arg(secs.to_string());
    for (ip, port) in observers {
        cmd.arg(format!("{ip}:{port}"));
    }
    cmd.stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot run python3 in a netns: {e} (apt-get install python3 iproute2)")
        })
}

#[test]
fn forged_port_unreachable_messages_never_make_a_live_agent_stopped() {
    const N: usize = 3;
    let net = Net::new(N);
    let dir = TempDir::new("netns-forged-icmp");
    let names_: Vec<String> = (0..N).map(|i| format!("rc@{}", addr(i))).collect();
    let agents: Vec<AgentProc> = names_
        .iter()
        .map(|n| {
            let mut spec = Spec::with_seeds(n, &names_);
            spec.netns = Some(net.agents());
            AgentProc::start(dir.path(), &spec)
        })
        .collect();
    assert_all_see(
        &agents,
        &names_,
        Duration::from_secs(30),
        "the agents did not form a cluster",
        String::new,
    );

    // Every agent gossips on the base port of its own address.
    let port = common::BASE_PORT;
    let victim = addr(N - 1);
    let observers: Vec<(String, u16)> = (0..N - 1).map(|i| (addr(i), port)).collect();
    let forger = forge(&net, (&victim, port), &observers, 8);
    let end = Instant::now() + Duration::from_secs(10);
    let target = &names_[N - 1];
    while Instant::now() < end {
        for a in &agents {
            if let Some(s) = a.status() {
                assert!(
                    !names(&s.stopped_nodes).contains(target),
                    "{} lists the live {target} as stopped\n{}",
                    a.name,
                    logs(&agents.iter().collect::<Vec<_>>())
                );
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = forger.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "the forger failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let all = logs(&agents.iter().collect::<Vec<_>>());
    // The forgeries did reach the agents and were taken as evidence (the
    // test would prove nothing otherwise), and were refuted.
    assert!(
        all.contains(&format!("nothing listens at {victim}:{port}")),
        "no agent took the forged evidence (forger sent {}):\n{all}",
        String::from_utf8_lossy(&out.stdout).trim()
    );
    assert_all_see(
        &agents,
        &names_,
        Duration::from_secs(5),
        "the cluster is not whole after the forgeries",
        String::new,
    );
    assert!(
        !all.contains(&format!("member down: {target}")),
        "{target} was declared down:\n{all}"
    );
}
