//! A real single-member etcd (Debian's etcd-server) on loopback ports with
//! a temporary data directory; `etcdctl` (Debian's etcd-client) to look at
//! its keys as an operator would.

use std::fs;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::ports::free_port;
use super::require_binary;
use super::tls::TlsFiles;

/// A running etcd; killed (and its data removed) when dropped.
pub struct Etcd {
    client_port: u16,
    peer_port: u16,
    root: PathBuf,
    generation: u32,
    /// Client TLS with client certificates, when started with it.
    tls: Option<(PathBuf, PathBuf, PathBuf, PathBuf, PathBuf)>,
    child: Option<Child>,
}

impl Etcd {
    /// Starts etcd and waits (at most 15 s) until it reports healthy.
    pub fn start() -> Self {
        Self::start_with(None)
    }

    /// Starts etcd serving clients over TLS only, requiring client
    /// certificates signed by the CA of `tls`.
    pub fn start_tls(tls: &TlsFiles) -> Self {
        Self::start_with(Some((
            tls.path("ca.pem"),
            tls.path("server.pem"),
            tls.path("server.key"),
            tls.path("client.pem"),
            tls.path("client.key"),
        )))
    }

    fn start_with(tls: Option<(PathBuf, PathBuf, PathBuf, PathBuf, PathBuf)>) -> Self {
        let client_port = free_port();
        let mut peer_port = free_port();
        while peer_port == client_port {
            peer_port = free_port();
        }
        let root = std::env::temp_dir().join(format!(
            "rollcall-etcd-{}-{client_port}",
            std::process::id()
        ));
        let _ = fs::remove_dir_all(&root);
        fs::create_dir_all(&root).expect("create etcd's directory");
        let mut etcd = Self {
            client_port,
            peer_port,
            root,
            generation: 0,
            tls,
            child: None,
        };
        etcd.spawn();
        etcd
    }

    /// The client URL (`cluster.etcd.server`).
    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}", self.client_port)
    }

    /// The keys under `prefix`, sorted, as `etcdctl get --prefix` lists them.
    pub fn keys(&self, prefix: &str) -> Vec<String> {
        let out = self
            .etcdctl(&["get", "--prefix", "--keys-only", prefix])
            .expect("run etcdctl get");
        let mut keys: Vec<String> = String::from_utf8_lossy(&out)
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect();
        keys.sort();
        keys
    }

    /// Puts `key` = `value` (no lease), as an operator with etcdctl would.
    pub fn put(&self, key: &str, value: &str) {
        self.etcdctl(&["put", key, value]).expect("run etcdctl put");
    }

    /// Kills etcd (as a crash).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts etcd again on the same ports with an empty data directory:
    /// every key and lease is gone.
    pub fn restart_empty(&mut self) {
        self.kill();
        self.generation += 1;
        self.spawn();
    }

    /// What etcd logged (for assertion messages).
    pub fn log(&self) -> String {
        fs::read_to_string(self.root.join(format!("etcd{}.log", self.generation)))
            .unwrap_or_default()
    }

    fn spawn(&mut self) {
        let binary = require_binary("etcd", "etcd-server");
        let data = self.root.join(format!("data{}", self.generation));
        let client = self.url();
        let peer = format!("http://127.0.0.1:{}", self.peer_port);
        let log = fs::File::create(self.root.join(format!("etcd{}.log", self.generation)))
            .expect("create etcd's log");
        let mut command = Command::new(binary);
        if let Some((ca, cert, key, _, _)) = &self.tls {
            command
                .arg("--cert-file")
                .arg(cert)
                .arg("--key-file")
                .arg(key)
                .arg("--trusted-ca-file")
                .arg(ca)
                .arg("--client-cert-auth");
        }
        let child = command
            .args(["--name", "t", "--data-dir"])
            .arg(&data)
            .args(["--listen-client-urls", &client])
            .args(["--advertise-client-urls", &client])
            .args(["--listen-peer-urls", &peer])
            .args(["--initial-advertise-peer-urls", &peer])
            .args(["--initial-cluster", &format!("t={peer}")])
            .args(["--initial-cluster-state", "new", "--log-level", "warn"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start etcd");
        self.child = Some(child);
        let end = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    panic!("etcd exited at start ({status}):\n{}", self.log());
                }
            }
            if self.etcdctl(&["endpoint", "health"]).is_ok() {
                return;
            }
            assert!(
                Instant::now() < end,
                "etcd did not become healthy within 15 s:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Runs etcdctl against this server; its stdout, or its stderr as error.
    fn etcdctl(&self, args: &[&str]) -> Result<Vec<u8>, String> {
        let binary = require_binary("etcdctl", "etcd-client");
        let mut command = Command::new(binary);
        if let Some((ca, _, _, cert, key)) = &self.tls {
            command
                .arg("--cacert")
                .arg(ca)
                .arg("--cert")
                .arg(cert)
                .arg("--key")
                .arg(key);
        }
        let out = command
            .env("ETCDCTL_API", "3")
            .arg(format!("--endpoints={}", self.url()))
            .arg("--command-timeout=2s")
            .args(args)
            .output()
            .map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(out.stdout)
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        self.kill();
        let _ = fs::remove_dir_all(&self.root);
    }
}
