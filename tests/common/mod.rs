//! Real `rollcall agent` processes for the integration tests: each with its
//! own config file and data_dir under a temporary directory, logs kept for
//! failure messages, every child killed when its guard drops.

#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use rollcall::core::{NodeName, Status};

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_rollcall");

/// A base port away from the default, so a real agent on 4370 cannot interfere.
pub const BASE_PORT: u16 = 24370;

/// A directory removed (with everything in it) when dropped.
pub struct TempDir(PathBuf);

impl TempDir {
    /// A fresh directory named after the test.
    pub fn new(test: &str) -> Self {
        let path = std::env::temp_dir().join(format!("rollcall-{test}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path).expect("create a temporary directory");
        Self(path)
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// How to configure one agent.
#[derive(Clone)]
pub struct Spec {
    /// `node.name`.
    pub name: String,
    /// `node.cookie`.
    pub cookie: String,
    /// `cluster.discovery_strategy`.
    pub strategy: &'static str,
    /// `cluster.static.seeds`.
    pub seeds: Vec<String>,
    /// A network namespace to run the agent in (`ip netns exec NS`).
    pub netns: Option<String>,
    /// More TOML tables appended to the config (`[cluster.dns]`, ...).
    pub extra: String,
    /// Environment variables for the agent (`ROLLCALL_*` overrides).
    pub env: Vec<(String, String)>,
}

impl Spec {
    /// A static-seed agent with the test cookie.
    pub fn with_seeds(name: &str, seeds: &[String]) -> Self {
        Self {
            name: name.to_owned(),
            cookie: "integration test cookie".to_owned(),
            strategy: "static",
            seeds: seeds.to_vec(),
            netns: None,
            extra: String::new(),
            env: Vec::new(),
        }
    }

    /// A manual-strategy agent with the test cookie.
    pub fn manual(name: &str) -> Self {
        Self {
            strategy: "manual",
            ..Self::with_seeds(name, &[])
        }
    }

    fn toml(&self, data_dir: &Path) -> String {
        let seeds: Vec<String> = self.seeds.iter().map(|s| format!("{s:?}")).collect();
        format!(
            "[node]\nname = {:?}\ncookie = {:?}\ndata_dir = {:?}\n\n\
             [cluster]\ndiscovery_strategy = {:?}\nbase_port = {BASE_PORT}\n\
             profile = \"local\"\nexpected_size = 6\n\n\
             [cluster.static]\nseeds = [{}]\n\n{}",
            self.name,
            self.cookie,
            data_dir.display().to_string(),
            self.strategy,
            seeds.join(", "),
            self.extra
        )
    }
}

/// One running `rollcall agent` process, SIGKILLed when dropped.
pub struct AgentProc {
    /// Its node name.
    pub name: String,
    /// Its data_dir (holds the control socket).
    pub data_dir: PathBuf,
    log: PathBuf,
    child: Option<Child>,
}

impl AgentProc {
    /// Writes the agent's config under `root` and starts it.
    pub fn start(root: &Path, spec: &Spec) -> Self {
        let slug = spec.name.replace(['@', '.'], "_");
        let data_dir = root.join(&slug);
        let config = root.join(format!("{slug}.toml"));
        let log = root.join(format!("{slug}.log"));
        fs::write(&config, spec.toml(&data_dir)).expect("write the agent's config");
        let mut command = match &spec.netns {
            // `ip netns exec` execs the agent in place: same pid.
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns, BIN]);
                c
            }
            None => Command::new(BIN),
        };
        let child = command
            .args(["agent", "--config"])
            .arg(&config)
            .env("RUST_LOG", "info")
            .envs(spec.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(fs::File::create(&log).expect("create the agent's log"))
            .spawn()
            .expect("start rollcall agent");
        Self {
            name: spec.name.clone(),
            data_dir,
            log,
            child: Some(child),
        }
    }

    /// Runs `rollcall ctl --data-dir DIR ARGS...`.
    pub fn ctl(&self, args: &[&str]) -> Output {
        ctl(&self.data_dir, args)
    }

    /// `cluster status --json`, or `None` if the agent does not answer.
    pub fn status(&self) -> Option<Status> {
        let out = self.ctl(&["cluster", "status", "--json"]);
        if !out.status.success() {
            return None;
        }
        serde_json::from_slice(&out.stdout).ok()
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).unwrap_or(0)
    }

    /// Waits up to `within` for the process to exit by itself.
    pub fn wait_exit(&mut self, within: Duration) -> Option<ExitStatus> {
        let child = self.child.as_mut()?;
        let end = Instant::now() + within;
        while Instant::now() < end {
            if let Ok(Some(status)) = child.try_wait() {
                self.child = None;
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// SIGKILL, as a crash.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Sends `signal` (`TERM`, `INT`) and waits up to `within` for the exit.
    pub fn signal_and_wait(&mut self, signal: &str, within: Duration) -> Option<ExitStatus> {
        let child = self.child.as_mut()?;
        let sent = Command::new("sh")
            .args(["-c", &format!("kill -{signal} {}", child.id())])
            .status()
            .expect("run kill");
        assert!(sent.success(), "kill -{signal} failed");
        self.wait_exit(within)
    }

    /// What the agent logged so far (stderr).
    pub fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for AgentProc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Runs `rollcall ctl --data-dir DIR ARGS...`.
pub fn ctl(data_dir: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("ctl")
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .output()
        .expect("run rollcall ctl")
}

/// Rediscovery every second, alone or not (`ROLLCALL_CLUSTER__*` overrides),
/// so tests of automatic discovery see changes quickly.
pub fn fast_discovery() -> Vec<(String, String)> {
    [
        ("ROLLCALL_CLUSTER__DISCOVERY_INTERVAL", "1s"),
        ("ROLLCALL_CLUSTER__DISCOVERY_INTERVAL_ALONE", "1s"),
    ]
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .to_vec()
}

/// Polls `done` every 100 ms until it holds or `within` has passed.
pub fn wait_until(within: Duration, mut done: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + within;
    loop {
        if done() {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Names as the status lists them.
/// Whether every agent lists exactly `expected` as running (any order).
pub fn all_see(agents: &[&AgentProc], expected: &[String]) -> bool {
    let mut expected = expected.to_vec();
    expected.sort();
    agents.iter().all(|a| {
        a.status().is_some_and(|s| {
            let mut running = names(&s.running_nodes);
            running.sort();
            running == expected
        })
    })
}

/// Waits up to `within` until every agent lists exactly `expected` as running;
/// otherwise panics with `what`, every agent's log and `context()` (the
/// discovery service's own log or requests).
pub fn assert_all_see(
    agents: &[AgentProc],
    expected: &[String],
    within: Duration,
    what: &str,
    context: impl FnOnce() -> String,
) {
    let agents: Vec<&AgentProc> = agents.iter().collect();
    if !wait_until(within, || all_see(&agents, expected)) {
        panic!("{what}\n{}\n{}", logs(&agents), context());
    }
}

/// Starts an agent whose config is broken and asserts that it exits with an
/// error within 10 s, naming `key` in its log.
pub fn assert_refused(root: &Path, spec: &Spec, key: &str) {
    let mut agent = AgentProc::start(root, spec);
    let status = agent.wait_exit(Duration::from_secs(10));
    assert!(
        status.is_some_and(|s| !s.success()),
        "the agent did not refuse its config\n{}",
        agent.log()
    );
    assert!(agent.log().contains(key), "{}", agent.log());
}

pub fn names(list: &[NodeName]) -> Vec<String> {
    list.iter().map(|n| n.to_string()).collect()
}

/// Every agent's log, for an assertion message.
pub fn logs(agents: &[&AgentProc]) -> String {
    agents
        .iter()
        .map(|a| format!("--- {} ---\n{}", a.name, a.log()))
        .collect::<Vec<_>>()
        .join("\n")
}

/// stdout and stderr of a ctl run, for an assertion message.
pub fn text(out: &Output) -> String {
    format!(
        "exit {:?}; stdout: {}; stderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).trim(),
        String::from_utf8_lossy(&out.stderr).trim()
    )
}

/// Runs a system command a network test needs (`ip`, `nft`), panicking with
/// its output, and with what to install, if it cannot run or fails.
pub fn run(args: &[&str]) {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run `{}`: {e}. Network tests need root with iproute2 and nftables \
                 (apt-get install iproute2 nftables; scripts/install-deps does it)",
                args.join(" ")
            )
        });
    assert!(
        out.status.success(),
        "`{}` failed: {}{}\nNetwork tests need root and network namespaces \
         (apt-get install iproute2 nftables; run as root).",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
