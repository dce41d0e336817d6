//! The `rollcall` binary: run an agent, or control a running one.
//!
//! ```text
//! rollcall agent --config rollcall.toml
//! rollcall agent [--config FILE] --print-config
//! rollcall ctl [--config FILE | --data-dir DIR] cluster status [--verbose] [--json]
//! rollcall ctl ... cluster join NODE
//! rollcall ctl ... cluster leave
//! rollcall ctl ... cluster force-leave NODE
//! rollcall ctl ... stats [--json]
//! rollcall ctl ... monitor [--since-start]
//! ```
//!
//! Errors are one line on stderr and a non-zero exit status.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{anyhow, Context, Result};
use clap::{Parser, Subcommand};
use rollcall::runtime::control::{self, Request, Response};
use rollcall::runtime::signal::ShutdownSignal;
#[cfg(feature = "metrics")]
use rollcall::runtime::MetricsServer;
use rollcall::runtime::{Agent, AgentConfig, ControlServer, MetricsConfig};

/// How long the agent may take to leave and exit after SIGINT/SIGTERM.
const SHUTDOWN_DEADLINE: Duration = Duration::from_secs(3);

#[derive(Parser)]
#[command(
    name = "rollcall",
    version,
    about = "Cluster membership on SWIM, as EMQX clusters"
)]
struct Cli {
    #[command(subcommand)]
    command: Top,
}

#[derive(Subcommand)]
enum Top {
    /// Run a node until SIGINT or SIGTERM (then it leaves the cluster).
    Agent {
        /// The TOML config file (keys as emqx.conf; ROLLCALL_* variables override).
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// Print the configuration the agent would run with (the file, then
        /// ROLLCALL_* variables, defaults filled in) as TOML, the cookie
        /// masked, and exit.
        #[arg(long)]
        print_config: bool,
    },
    /// Talk to the agent running on this machine (through its control socket).
    Ctl {
        /// Find the agent's data_dir in this config file.
        #[arg(long, short, conflicts_with = "data_dir")]
        config: Option<PathBuf>,
        /// The agent's data_dir (where its control socket is).
        #[arg(long)]
        data_dir: Option<PathBuf>,
        #[command(subcommand)]
        command: Ctl,
    },
}

#[derive(Subcommand)]
enum Ctl {
    /// Cluster management.
    Cluster {
        #[command(subcommand)]
        command: Cluster,
    },
    /// Print the agent's counters (what the metrics endpoint exports).
    Stats {
        /// As one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Print membership events as they happen, one JSON object per line,
    /// until interrupted or the agent stops.
    Monitor {
        /// First replay the events the agent saw since it started (its
        /// last 10,000; a first `history_dropped` line counts older ones).
        #[arg(long)]
        since_start: bool,
    },
}

#[derive(Subcommand)]
enum Cluster {
    /// Print running and stopped nodes (and a line if no core node runs).
    Status {
        /// As JSON: {"running_nodes": [...], "stopped_nodes": [...],
        /// "roles": {node: "core" | "replicant"}}, and
        /// "no_core_running": true when no running node is a core node.
        #[arg(long)]
        json: bool,
        /// Also every node's state (alive, suspect, down), role,
        /// generation, address and since when it is in that state
        /// ("members").
        #[arg(long, short)]
        verbose: bool,
    },
    /// Join the cluster NODE is in (runs on the joining node; core nodes
    /// only: replicants join through automatic discovery).
    Join {
        /// A node of the cluster, name@host.
        node: String,
    },
    /// Leave the cluster.
    Leave,
    /// Remove NODE (usually a dead one) from the cluster.
    ForceLeave {
        /// The node to remove, name@host.
        node: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the tokio runtime")?;
    match cli.command {
        Top::Agent {
            config,
            print_config: true,
        } => {
            print!("{}", AgentConfig::load_printable(config.as_deref())?);
            Ok(())
        }
        Top::Agent {
            config,
            print_config: false,
        } => {
            init_logging();
            let config = AgentConfig::load(config.as_deref())?;
            runtime.block_on(agent(config))
        }
        Top::Ctl {
            config,
            data_dir,
            command,
        } => {
            let data_dir = match data_dir {
                Some(dir) => dir,
                None => AgentConfig::load(config.as_deref())?.data_dir,
            };
            match command {
                Ctl::Cluster { command } => runtime.block_on(ctl(data_dir, command)),
                Ctl::Stats { json } => runtime.block_on(stats(data_dir, json)),
                Ctl::Monitor { since_start } => runtime.block_on(follow(data_dir, since_start)),
            }
        }
    }
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .init();
}

async fn agent(config: AgentConfig) -> Result<()> {
    // Before anything else: from here on the signals wake us, not kill us.
    let mut signals = ShutdownSignal::new().context("cannot install signal handlers")?;
    let data_dir = config.data_dir.clone();
    let metrics_config = config.metrics;
    let mut agent = Agent::start(config).await?;
    let control = ControlServer::start(&data_dir, agent.handle()).await?;
    tracing::info!("control socket at {}", control.path().display());
    let _metrics = match metrics_config {
        Some(m) => Some(metrics(&m, &agent).await?),
        None => None,
    };
    tokio::select! {
        name = signals.recv() => {
            tracing::info!("{name}: leaving the cluster");
            drop(control);
            agent.stop(true, SHUTDOWN_DEADLINE).await?;
            tracing::info!("stopped");
            Ok(())
        }
        () = agent.stopped() => Err(anyhow!("the agent stopped unexpectedly")),
    }
}

/// Starts the metrics endpoint `[metrics]` asks for.
#[cfg(feature = "metrics")]
async fn metrics(config: &MetricsConfig, agent: &Agent) -> Result<MetricsServer> {
    let server = MetricsServer::start(config, agent.handle()).await?;
    tracing::info!("metrics at http://{}/metrics", server.local_addr());
    Ok(server)
}

/// Config validation refuses `[metrics]` in a build without it.
#[cfg(not(feature = "metrics"))]
async fn metrics(_: &MetricsConfig, _: &Agent) -> Result<()> {
    Err(anyhow!(
        "metrics.listen: Prometheus metrics are not in this build (cargo feature `metrics`)"
    ))
}

async fn stats(data_dir: PathBuf, json: bool) -> Result<()> {
    let path = control::socket_path(&data_dir);
    match control::request(&path, &Request::Stats).await? {
        Response::Stats(stats) if json => println!("{}", serde_json::to_string(&stats)?),
        Response::Stats(stats) => println!("{stats}"),
        Response::Error { message } => return Err(anyhow!(message)),
        other => return Err(anyhow!("unexpected answer from the agent: {other:?}")),
    }
    Ok(())
}

async fn ctl(data_dir: PathBuf, command: Cluster) -> Result<()> {
    let path = control::socket_path(&data_dir);
    let (request, json) = match command {
        Cluster::Status {
            json,
            verbose: true,
        } => return verbose_status(data_dir, json).await,
        Cluster::Status { json, .. } => (Request::Status, json),
        Cluster::Join { node } => (Request::Join { node }, false),
        Cluster::Leave => (Request::Leave, false),
        Cluster::ForceLeave { node } => (Request::ForceLeave { node }, false),
    };
    match control::request(&path, &request).await? {
        Response::Ok { message, status } => {
            if let Some(message) = message {
                println!("{message}");
            }
            if let Some(status) = status {
                if json {
                    println!("{}", serde_json::to_string(&status)?);
                } else {
                    println!("{status}");
                }
            }
            Ok(())
        }
        Response::Error { message } => Err(anyhow!(message)),
        other => Err(anyhow!("unexpected answer from the agent: {other:?}")),
    }
}

/// `cluster status --verbose [--json]`.
async fn verbose_status(data_dir: PathBuf, json: bool) -> Result<()> {
    let path = control::socket_path(&data_dir);
    match control::request(&path, &Request::StatusVerbose).await? {
        Response::Verbose(v) if json => println!("{}", serde_json::to_string(&v)?),
        Response::Verbose(v) => println!("{}", v.to_text(std::time::SystemTime::now())),
        Response::Error { message } => return Err(anyhow!(message)),
        other => return Err(anyhow!("unexpected answer from the agent: {other:?}")),
    }
    Ok(())
}

/// `monitor [--since-start]`: prints each line as it comes, flushed, until
/// the agent stops. Ctrl-C ends it; so does a closed stdout (`| head`).
async fn follow(data_dir: PathBuf, since_start: bool) -> Result<()> {
    let path = control::socket_path(&data_dir);
    let mut out = std::io::stdout().lock();
    let printed = control::monitor(&path, since_start, |line| {
        writeln!(out, "{line}")?;
        out.flush()
    })
    .await;
    match printed {
        Err(control::ControlError::Io { error, .. })
            if error.kind() == std::io::ErrorKind::BrokenPipe =>
        {
            Ok(())
        }
        other => Ok(other?),
    }
}
