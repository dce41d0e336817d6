//! A real dnsmasq on 127.0.0.1 at a high port, authoritative for one zone:
//! A and AAAA records (`--host-record`), SRV records (`--srv-host`), and a
//! `--hostsdir` whose files are read again within a second, so records can
//! be added while a cluster runs. SRV changes restart the server (dnsmasq
//! reads them only at start).

use std::fs;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::ports::free_port;
use super::require_binary;

/// One SRV record: `_service._proto.zone` -> target:port.
#[derive(Clone, Debug)]
pub struct Srv {
    /// The record's name (`_rollcall._udp.cluster.test`).
    pub name: String,
    /// The target host (which needs an A record of its own).
    pub target: String,
    /// The port.
    pub port: u16,
}

/// A running dnsmasq; killed (and its directory removed) when dropped.
pub struct Dnsmasq {
    zone: String,
    port: u16,
    dir: PathBuf,
    hosts: Vec<(String, IpAddr)>,
    srv: Vec<Srv>,
    files: usize,
    child: Option<Child>,
}

impl Dnsmasq {
    /// Starts dnsmasq for `zone` with these address and SRV records, and
    /// waits (at most 10 s) until it answers.
    pub fn start(zone: &str, hosts: &[(&str, IpAddr)], srv: &[Srv]) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "rollcall-dnsmasq-{}-{}",
            std::process::id(),
            free_port()
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("hosts.d")).expect("create dnsmasq's directory");
        let mut server = Self {
            zone: zone.to_owned(),
            port: free_port(),
            dir,
            hosts: hosts.iter().map(|(n, ip)| (n.to_string(), *ip)).collect(),
            srv: srv.to_vec(),
            files: 0,
            child: None,
        };
        server.spawn();
        server
    }

    /// Where it listens (`cluster.dns.server`).
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// Adds an address record through the hosts directory (no restart).
    pub fn add_host(&mut self, name: &str, ip: IpAddr) {
        self.files += 1;
        let path = self
            .dir
            .join("hosts.d")
            .join(format!("extra{}", self.files));
        fs::write(&path, format!("{ip} {name}\n")).expect("write a hosts file");
    }

    /// Adds an SRV record, restarting dnsmasq on the same port.
    pub fn add_srv(&mut self, srv: Srv) {
        self.srv.push(srv);
        self.stop();
        self.spawn();
    }

    /// What dnsmasq logged (for assertion messages).
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.join("dnsmasq.log")).unwrap_or_default()
    }

    fn spawn(&mut self) {
        let binary = require_binary("dnsmasq", "dnsmasq");
        let mut cmd = Command::new(binary);
        cmd.args([
            "--keep-in-foreground",
            "--conf-file=/dev/null",
            "--pid-file=",
            "--listen-address=127.0.0.1",
            "--bind-interfaces",
            "--no-resolv",
            "--no-hosts",
            "--local-ttl=1",
            "--log-facility=-",
        ])
        .arg(format!("--port={}", self.port))
        .arg(format!("--local=/{}/", self.zone))
        .arg(format!("--hostsdir={}", self.dir.join("hosts.d").display()));
        // dnsmasq drops privileges to "nobody" unless told otherwise.
        if is_root() {
            cmd.arg("--user=root");
        }
        for (name, ip) in &self.hosts {
            cmd.arg(format!("--host-record={name},{ip}"));
        }
        for s in &self.srv {
            cmd.arg(format!(
                "--srv-host={},{},{},0,10",
                s.name, s.target, s.port
            ));
        }
        let log = fs::File::create(self.dir.join("dnsmasq.log")).expect("create dnsmasq's log");
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start dnsmasq");
        self.child = Some(child);
        self.wait_ready();
    }

    /// Sends a query for the zone until any answer comes back (10 s at most).
    fn wait_ready(&mut self) {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("bind a UDP socket");
        socket
            .set_read_timeout(Some(Duration::from_millis(200)))
            .expect("set a read timeout");
        let query = dns_query(&self.zone);
        let end = Instant::now() + Duration::from_secs(10);
        let mut buf = [0u8; 512];
        while Instant::now() < end {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    panic!("dnsmasq exited at start ({status}):\n{}", self.log());
                }
            }
            let _ = socket.send_to(&query, self.addr());
            if socket.recv_from(&mut buf).is_ok() {
                return;
            }
        }
        panic!("dnsmasq did not answer within 10 s:\n{}", self.log());
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Dnsmasq {
    fn drop(&mut self) {
        self.stop();
        let _ = fs::remove_dir_all(&self.dir);
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// A minimal DNS query (A record of `name`).
fn dns_query(name: &str) -> Vec<u8> {
    let mut q = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
    for label in name.trim_end_matches('.').split('.') {
        q.push(label.len() as u8);
        q.extend_from_slice(label.as_bytes());
    }
    q.extend_from_slice(&[0, 0, 1, 0, 1]);
    q
}
