//! `rollcall-sim`: run simulated rollcall clusters from the command line.
//! The logic lives in the `rollcall_sim` library; this file parses
//! arguments and prints.

/// With threads, a datagram is allocated on the thread that ran its
/// sender and freed on the thread that ran its receiver; glibc's malloc
/// pays for each such free with its arena's lock, mimalloc hands it back
/// to its owner without one (BENCHMARKS.md, "Threads").
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use rollcall_sim::batch::{Batch, BatchKind, SeedRecord, Summary};
use rollcall_sim::run::Progress;
use rollcall_sim::scenario::{Formation, Knobs};
use rollcall_sim::shard::{self, Shard};
use rollcall_sim::{
    bench, plot, pool, run, seeds, sweep, NetProfile, Plan, RunReport, RunSpec, Scenario, Tuning,
};

#[derive(Parser)]
#[command(
    name = "rollcall-sim",
    version,
    about = "Deterministic simulator for rollcall clusters: the real Node, a virtual clock, a simulated network"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run one scenario and report what happened.
    Run(RunArgs),
    /// Swarm testing: a random fault profile per seed, then a liveness check.
    #[command(long_about = SWEEP_ABOUT)]
    Sweep(SweepArgs),
    /// Run one scenario across many seeds and check agreement, resurrections
    /// and the view-size bound on each.
    #[command(long_about = SEEDS_ABOUT)]
    Seeds(SeedsArgs),
    /// Merge the JSON lines of a sharded `sweep` or `seeds` (`--shard K/N
    /// --out FILE`) and print what the unsharded batch prints.
    #[command(long_about = MERGE_ABOUT)]
    Merge(MergeArgs),
    /// Measure the simulator's speed, memory and convergence (100 to 3,000
    /// nodes) beside the bare-foca floor, and write BENCHMARKS.md's Simulator section.
    Bench(BenchArgs),
}

const SEEDS_ABOUT: &str = "\
Runs one built-in scenario for each of K seeds (small N, e.g. 12-30 nodes) and \
checks every seed:

  1. agreement: after the last operation of the timeline (the last fault) every \
live node's view equals the set of live nodes within the bound, and still does \
at the end (force-left nodes are not live);
  2. no resurrection: no node reports MemberUp for a force-left node at its \
force-left generation (any renewal) after the force-leave;
  3. bounded view: no node holds more than N records (the N-1 other names, \
plus the down record of its own previous identity that foca keeps after a \
renewal); in autoclean, no live node holds the crashed node at the end; in long-partition, \
no node holds the other side at the heal;
  4. honest measurement: no view changed without an event (the world's audit \
re-read none: views_audited = 0); a failure names the node and time of the first.

  bound = 2 x periodic_announce_to_down_members + detection bound + 30 s discovery
        (LAN, 30 nodes: 130 s + 8.9 s + 30 s = 168.9 s, about 169 protocol periods)

autoclean and long-partition run with autoclean = 60 s; every node rediscovers \
its seeds (static discovery) when its core asks: every 5 s while alone, every 30 s \
otherwise, and at once when it finds itself alone again. A \
failing seed prints the command that reproduces it; the exit status is then \
non-zero.";

const MERGE_ABOUT: &str = "\
Reads the JSON lines that the shards of one `sweep` or `seeds` batch wrote \
(`--shard K/N --out FILE`, one line per seed), checks that they hold every seed \
of the batch exactly once, and prints what the unsharded batch prints: the \
header, one line per seed in seed order, the summary, and on stderr the \
commands that reproduce the failing seeds. The exit status is non-zero when \
a seed failed, as for the batch itself.

  rollcall-sim sweep --seeds 200 --nodes 30 --shard 1/4 --out shard-1.jsonl
  ...
  rollcall-sim sweep --seeds 200 --nodes 30 --shard 4/4 --out shard-4.jsonl
  rollcall-sim merge shard-*.jsonl";

const SWEEP_ABOUT: &str = "\
Swarm testing. For each seed, a random subset of faults with random parameters \
(loss, duplication, a symmetric or one-way partition into 2 or 3 sides, crashes \
with or without restart, a slow node) during a 30 s fault phase on a formed \
cluster. Then everything heals, and every live node's view must equal the set \
of live nodes within the liveness bound:

  bound = 2 x periodic_announce_to_down_members + detection bound
        (LAN, 30 nodes: 2 x 65 s + 8.9 s = 138.9 s, about 139 protocol periods)

foca has no anti-entropy: sides that declared each other down meet again only \
through the periodic announce to down members, hence two of its periods. A seed \
that misses the bound, or whose views the world's audit had to re-read (a view \
change no event reported), fails; the command that reproduces it is printed and the \
exit status is non-zero.

Seeds: --seeds K runs seeds 1..=K (from --first-seed). ROLLCALL_SIM_SEED=X runs \
exactly seed X; ROLLCALL_SIM_SEEDS=K sets the count.";

#[derive(Args, Clone)]
struct RunArgs {
    /// Nodes in the cluster.
    #[arg(long, default_value_t = 100)]
    nodes: u32,
    /// Built-in scenario: join, crash (process: the host answers "port
    /// unreachable"), host-crash (silence), partition-heal, partition3, loss, churn,
    /// slow-node, slow-nodes (--slow-fraction slow in bursts), lossy-node
    /// (one node loses --loss of what it sends), force-leave, autoclean (autoclean = 60 s), long-partition
    /// (autoclean = 60 s, halves apart 120 s), partition-roles (the smaller
    /// side holds more core nodes, the larger is mostly replicants).
    #[arg(long, default_value = "crash")]
    scenario: Scenario,
    /// The seed: one seed replays the run exactly.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Link timings and protocol profile: lan, wan, local.
    #[arg(long, default_value = "lan")]
    profile: NetProfile,
    /// Virtual seconds to run after formation (default: the scenario's own).
    #[arg(long)]
    duration: Option<f64>,
    /// Loss probability of the `loss` scenario (every datagram), or of the
    /// lossy node's outbound datagrams in `lossy-node`.
    #[arg(long, default_value_t = 0.1)]
    loss: f64,
    /// The fraction of nodes that is slow in bursts in `slow-nodes` (at
    /// least one node).
    #[arg(long, default_value_t = 0.05)]
    slow_fraction: f64,
    /// Boot window of the `join` scenario, in virtual seconds.
    #[arg(long, default_value_t = 10.0)]
    join_window: f64,
    /// A scenario file (TOML) instead of a built-in scenario.
    #[arg(long)]
    file: Option<PathBuf>,
    /// Print exactly one JSON object instead of the summary.
    #[arg(long)]
    json: bool,
    /// Write the convergence curve (fraction of correct views over virtual time) as SVG.
    #[arg(long)]
    plot: Option<PathBuf>,
    /// Write the event log (one line per event) to this file.
    #[arg(long)]
    event_log: Option<PathBuf>,
    /// Run twice and compare the event logs' hashes; fail if they differ.
    #[arg(long)]
    check_determinism: bool,
    /// Turn full-state sync off (`Config::sync = None`): plain foca gossip.
    /// Nodes still join through the same seeds on the same schedule.
    #[arg(long)]
    no_sync: bool,
    /// Ignore "port unreachable" answers from a crashed process's host
    /// (`Config::network_evidence = false`): crashes are detected by the
    /// suspicion timeout alone, as a host crash is.
    #[arg(long)]
    no_network_evidence: bool,
    /// Plain SWIM suspicions (`Config::lifeguard = false`): suspects are
    /// not told, suspicions run the fixed timeout, probing never slows.
    #[arg(long)]
    no_lifeguard: bool,
    /// Run the same seed with sync on and with sync off and report both; with
    /// --plot, draw both convergence curves on one chart.
    #[arg(long, conflicts_with_all = ["no_sync", "check_determinism", "event_log"])]
    compare_sync: bool,
    /// How a formed scenario's cluster forms before its timeline: `joined`
    /// (every node starts and joins node 0, and the run waits for complete
    /// views) or `restored` (every node starts holding every other as alive
    /// via `Node::restore_members`, no join storm; for large N). Default:
    /// the scenario's own (`crash` and `host-crash` are restored, the other
    /// formed scenarios joined).
    #[arg(long)]
    formation: Option<FormationArg>,
    /// Threads that handle the nodes of each window of virtual time
    /// (default: the cores available). The run, its event log included, is
    /// the same for every count.
    #[arg(long, default_value_t = pool::default_threads())]
    threads: usize,
    /// Windows with fewer wakeups than this are handled on one thread:
    /// below it, sharing a window out costs more than it saves. The run is
    /// the same for every value.
    #[arg(long, default_value_t = rollcall_sim::parallel::MIN_PARALLEL)]
    min_parallel: usize,
    /// Renamed: `--bootstrap join` is `--formation joined`, `--bootstrap
    /// converged` is `--formation restored`. Kept only to say so.
    #[arg(long, hide = true)]
    bootstrap: Option<String>,
}

/// How a formed cluster forms (`--formation`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum FormationArg {
    /// Every node starts and joins node 0; the run waits for complete views.
    Joined,
    /// Every node starts with every other's NodeId (`restore_members`).
    Restored,
}

impl FormationArg {
    fn formation(self) -> Formation {
        match self {
            FormationArg::Joined => Formation::Joined,
            FormationArg::Restored => Formation::Restored,
        }
    }

    fn word(self) -> &'static str {
        match self {
            FormationArg::Joined => "joined",
            FormationArg::Restored => "restored",
        }
    }
}

/// The error for the renamed `--bootstrap VALUE`: which `--formation` it is now.
fn bootstrap_renamed(value: &str) -> anyhow::Error {
    match value {
        "converged" => {
            anyhow::anyhow!("--bootstrap converged was renamed: use --formation restored")
        }
        "join" => anyhow::anyhow!("--bootstrap join was renamed: use --formation joined"),
        _ => anyhow::anyhow!(
            "--bootstrap was renamed to --formation: use --formation joined (was \
             --bootstrap join) or --formation restored (was --bootstrap converged)"
        ),
    }
}

#[derive(Args, Clone)]
struct SeedsArgs {
    /// The scenario: partition-heal, partition3, long-partition, force-leave,
    /// autoclean, churn, partition-roles (any built-in except join).
    #[arg(long)]
    scenario: Scenario,
    #[command(flatten)]
    range: SeedRange,
    /// Nodes per run.
    #[arg(long, default_value_t = 20)]
    nodes: u32,
    /// Link timings and protocol profile: lan, wan, local.
    #[arg(long, default_value = "lan")]
    profile: NetProfile,
    /// Turn full-state sync off.
    #[arg(long)]
    no_sync: bool,
    /// Print one JSON object per seed.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    par: Parallel,
}

/// How a batch of seeds spreads over cores and machines.
#[derive(Args, Clone)]
struct Parallel {
    /// Seeds run at once, one per thread (default: the cores available).
    /// The output is the same for every thread count.
    #[arg(long, default_value_t = pool::default_threads())]
    threads: usize,
    /// Run only shard K of N (1 <= K <= N): the seeds at positions
    /// K-1, K-1+N, K-1+2N, ... of the range. Merge the shards' --out files
    /// with `rollcall-sim merge`.
    #[arg(long, default_value = "1/1")]
    shard: Shard,
    /// Also write one JSON line per seed to this file, for `merge`.
    #[arg(long)]
    out: Option<PathBuf>,
}

#[derive(Args, Clone)]
struct MergeArgs {
    /// The shards' --out files.
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Print one JSON object per seed, as the batch's --json does.
    #[arg(long)]
    json: bool,
}

/// The seeds `sweep` and `seeds` run: a range, or one seed.
#[derive(Args, Clone)]
struct SeedRange {
    /// How many seeds, from --first-seed (ROLLCALL_SIM_SEEDS).
    #[arg(long, default_value_t = 20, env = "ROLLCALL_SIM_SEEDS")]
    seeds: u64,
    /// The first seed of the range.
    #[arg(long, default_value_t = 1)]
    first_seed: u64,
    /// Run only this seed (ROLLCALL_SIM_SEED).
    #[arg(long, env = "ROLLCALL_SIM_SEED")]
    seed: Option<u64>,
}

impl SeedRange {
    /// The first seed and how many.
    fn span(&self) -> (u64, u64) {
        match self.seed {
            Some(s) => (s, 1),
            None => (self.first_seed, self.seeds),
        }
    }
}

#[derive(Args, Clone)]
struct SweepArgs {
    #[command(flatten)]
    range: SeedRange,
    /// Nodes per run.
    #[arg(long, default_value_t = 30)]
    nodes: u32,
    /// Link timings and protocol profile: lan, wan, local.
    #[arg(long, default_value = "lan")]
    profile: NetProfile,
    /// Print one JSON object per seed.
    #[arg(long)]
    json: bool,
    /// Write each failing seed's fault profile as a scenario file into this
    /// directory (replay it with `run --file`, e.g. with `--event-log`).
    #[arg(long)]
    save_failures: Option<PathBuf>,
    #[command(flatten)]
    par: Parallel,
}

#[derive(Args, Clone)]
struct BenchArgs {
    /// Write the results into this Markdown file's `## Simulator` section.
    #[arg(long)]
    write: Option<PathBuf>,
    /// Leave out the slow runs (2,000-node crash, 3,000-node storm and its
    /// floor, 10,000-node crash).
    #[arg(long)]
    quick: bool,
    /// Run only the thread-scaling cases (`--threads 1` against
    /// `--threads 2`: join storms, a partition-heal, a 200-seed sweep).
    #[arg(long)]
    threads_only: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Cmd::Run(args) => cmd_run(args),
        Cmd::Sweep(args) => cmd_sweep(args),
        Cmd::Seeds(args) => cmd_seeds(args),
        Cmd::Merge(args) => cmd_merge(args),
        Cmd::Bench(args) => cmd_bench(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn spec_of(args: &RunArgs) -> Result<RunSpec> {
    if let Some(value) = &args.bootstrap {
        return Err(bootstrap_renamed(value));
    }
    if !(0.0..=1.0).contains(&args.loss) {
        bail!("--loss must be within [0, 1], not {}", args.loss);
    }
    if !(0.0..=1.0).contains(&args.slow_fraction) {
        bail!(
            "--slow-fraction must be within [0, 1], not {}",
            args.slow_fraction
        );
    }
    if let Some(d) = args.duration {
        if !(d.is_finite() && d > 0.0) {
            bail!("--duration must be a positive number of seconds, not {d}");
        }
    }
    if !(args.join_window.is_finite() && args.join_window >= 0.0) {
        bail!(
            "--join-window must be a non-negative number of seconds, not {}",
            args.join_window
        );
    }
    let mut tuning = if args.no_sync {
        Tuning::without_sync()
    } else {
        Tuning::default()
    };
    tuning.network_evidence = !args.no_network_evidence;
    tuning.lifeguard = !args.no_lifeguard;
    let config = args.profile.configure(args.nodes.max(1), &tuning);
    let (mut plan, label) = match &args.file {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading scenario file {}", path.display()))?;
            let plan = Plan::from_toml(&text, args.nodes)
                .with_context(|| format!("in {}", path.display()))?;
            (plan, path.display().to_string())
        }
        None => (
            args.scenario.plan(
                args.nodes,
                args.seed,
                args.duration,
                Knobs {
                    loss: args.loss,
                    slow_fraction: args.slow_fraction,
                },
                &config,
            ),
            args.scenario.to_string(),
        ),
    };
    let mut reproduce = format!(
        "rollcall-sim run --nodes {} --seed {} --profile {}",
        args.nodes, args.seed, args.profile
    );
    match &args.file {
        Some(p) => reproduce.push_str(&format!(" --file {}", p.display())),
        None => reproduce.push_str(&format!(" --scenario {}", args.scenario)),
    }
    if let Some(d) = args.duration {
        plan.duration = d;
        reproduce.push_str(&format!(" --duration {d}"));
    }
    if matches!(args.scenario, Scenario::Loss | Scenario::LossyNode) && args.file.is_none() {
        reproduce.push_str(&format!(" --loss {}", args.loss));
    }
    if args.scenario == Scenario::SlowNodes && args.file.is_none() {
        reproduce.push_str(&format!(" --slow-fraction {}", args.slow_fraction));
    }
    if args.no_sync {
        reproduce.push_str(" --no-sync");
    }
    if args.no_network_evidence {
        reproduce.push_str(" --no-network-evidence");
    }
    if args.no_lifeguard {
        reproduce.push_str(" --no-lifeguard");
    }
    match (args.formation, plan.formation) {
        (None, _) => {}
        (Some(_), Formation::None) => {
            bail!("--formation applies to formed scenarios, not to one that starts its own nodes")
        }
        (Some(f), _) => {
            plan.formation = f.formation();
            reproduce.push_str(&format!(" --formation {}", f.word()));
        }
    }
    if args.scenario == Scenario::Join && args.file.is_none() {
        plan.ops = rollcall_sim::scenario::join_starts(args.nodes, args.join_window).collect();
        if args.join_window != 10.0 {
            reproduce.push_str(&format!(" --join-window {}", args.join_window));
        }
    }
    Ok(RunSpec {
        nodes: args.nodes,
        seed: args.seed,
        profile: args.profile,
        plan,
        label,
        reproduce,
        keep_log: args.event_log.is_some(),
        stop_when_converged: false,
        tuning,
        threads: args.threads,
        min_parallel: args.min_parallel,
    })
}

/// A progress bar on stderr, only when stderr is a terminal.
fn progress_bar() -> Option<(ProgressBar, Progress)> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = ProgressBar::new(1);
    bar.set_style(
        ProgressStyle::with_template("{spinner} {msg} [{bar:40}] {elapsed_precise}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let b = bar.clone();
    let progress: Progress = Box::new(move |now, end| {
        let end_ms = end.as_nanos() / 1_000_000;
        b.set_length(end_ms.max(1));
        b.set_position((now.as_nanos() / 1_000_000).min(end_ms));
        b.set_message(format!(
            "{:.1}/{:.0} virtual s",
            now.as_secs_f64(),
            end.as_secs_f64()
        ));
    });
    Some((bar, progress))
}

/// A plot's title: what ran.
fn plot_title(spec: &RunSpec) -> String {
    format!(
        "rollcall-sim: {} nodes, {}, {} profile, seed {}",
        spec.nodes, spec.label, spec.profile, spec.seed
    )
}

/// A plot's marks: the run's timeline of operations, each labelled with
/// what came of it (for a partition, when every side saw the others
/// stopped; for its heal, when the cluster agreed again).
fn plot_marks(report: &RunReport) -> Vec<(f64, String)> {
    report
        .timeline_outcomes()
        .into_iter()
        // One line for the operation, one for its outcome, one for any
        // aside in brackets: labels stay narrow enough for the chart.
        .map(|(at, what, outcome)| (at, format!("{what}\n{}", outcome.replacen(" (", "\n(", 1))))
        .collect()
}

/// `run --compare-sync`: the same seed with sync on and off, both reported,
/// both curves on one plot.
fn cmd_compare_sync(args: RunArgs) -> Result<ExitCode> {
    let on = spec_of(&RunArgs {
        no_sync: false,
        ..args.clone()
    })?;
    let off = spec_of(&RunArgs {
        no_sync: true,
        ..args.clone()
    })?;
    let a = run(&on, None)?;
    let b = run(&off, None)?;
    if let Some(path) = &args.plot {
        plot::write_curves(
            path,
            &format!("{}: sync on vs off", plot_title(&on)),
            &[
                ("sync on", &a.samples),
                ("sync off (--no-sync)", &b.samples),
            ],
            &plot_marks(&a.report),
        )?;
    }
    if args.json {
        let v = serde_json::json!({ "sync_on": a.report, "sync_off": b.report });
        println!("{v}");
    } else {
        println!("{}\n\n{}", a.report, b.report);
    }
    Ok(ExitCode::SUCCESS)
}

fn cmd_run(args: RunArgs) -> Result<ExitCode> {
    if args.compare_sync {
        return cmd_compare_sync(args);
    }
    let spec = spec_of(&args)?;
    let (bar, progress) = match progress_bar() {
        Some((b, p)) => (Some(b), Some(p)),
        None => (None, None),
    };
    let out = run(&spec, progress)?;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    if let Some(path) = &args.plot {
        plot::write_svg(
            path,
            &plot_title(&spec),
            &out.samples,
            &plot_marks(&out.report),
        )?;
    }
    if let (Some(path), Some(log)) = (&args.event_log, &out.log) {
        std::fs::write(path, log).with_context(|| format!("writing {}", path.display()))?;
    }
    let mut code = ExitCode::SUCCESS;
    let mut determinism = None;
    if args.check_determinism {
        let again = run(&spec, None)?;
        let same = again.report.event_log_hash == out.report.event_log_hash
            && again.report.events == out.report.events;
        determinism = Some((same, again.report.event_log_hash.clone()));
        if !same {
            code = ExitCode::FAILURE;
        }
    }
    if args.json {
        let mut v = serde_json::to_value(&out.report)?;
        if let (Some((same, _)), Some(obj)) = (&determinism, v.as_object_mut()) {
            obj.insert("deterministic".into(), serde_json::Value::Bool(*same));
        }
        println!("{v}");
    } else {
        println!("{}", out.report);
        if let Some((same, hash)) = &determinism {
            if *same {
                println!("  determinism   ok: a second run gave the same event log");
            } else {
                println!(
                    "  determinism   FAILED: second run's event log hash {hash} differs; reproduce: {}",
                    spec.reproduce
                );
            }
        }
    }
    Ok(code)
}

/// Runs `batch`'s seeds of this shard on `par.threads` threads (`work`
/// gives one seed's record; `each` sees every record before it prints) and
/// prints them in seed order, writing them to `par.out` too.
fn run_batch(
    batch: &Batch,
    par: &Parallel,
    json: bool,
    work: impl Fn(u64) -> Result<SeedRecord> + Sync,
    mut each: impl FnMut(&SeedRecord) -> Result<()>,
) -> Result<ExitCode> {
    let list = par.shard.select(&batch.seed_list());
    let mut summary = Summary::new(batch.clone(), json, list.len());
    summary.start(&mut std::io::stdout().lock())?;
    let mut out = match &par.out {
        Some(path) => Some((
            std::io::BufWriter::new(
                std::fs::File::create(path)
                    .with_context(|| format!("creating {}", path.display()))?,
            ),
            path,
        )),
        None => None,
    };
    pool::ordered(
        &list,
        par.threads,
        |&seed| work(seed),
        |r| {
            if let Some((file, path)) = out.as_mut() {
                serde_json::to_writer(&mut *file, &r)
                    .map_err(std::io::Error::from)
                    .and_then(|_| writeln!(file))
                    .and_then(|_| file.flush())
                    .with_context(|| format!("writing {}", path.display()))?;
            }
            each(&r)?;
            summary.seed(
                &r,
                &mut std::io::stdout().lock(),
                &mut std::io::stderr().lock(),
            )?;
            Ok(())
        },
    )?;
    let ok = summary.finish(&mut std::io::stdout().lock(), &mut std::io::stderr().lock())?;
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn cmd_sweep(args: SweepArgs) -> Result<ExitCode> {
    let (first_seed, count) = args.range.span();
    let batch = Batch {
        kind: BatchKind::Sweep,
        nodes: args.nodes,
        profile: args.profile,
        sync: true,
        first_seed,
        seeds: count,
    };
    let (nodes, profile) = (args.nodes, args.profile);
    run_batch(
        &batch,
        &args.par,
        args.json,
        |seed| {
            let o = sweep::run_seed(seed, nodes, profile)?;
            Ok(SeedRecord::of_sweep(&batch, &o)?)
        },
        |r| {
            let (false, Some(dir)) = (r.ok, &args.save_failures) else {
                return Ok(());
            };
            let seed = r.seed;
            let (plan, _) = sweep::plan_for(seed, nodes, profile);
            let path = dir.join(format!("sweep-seed-{seed}.toml"));
            std::fs::create_dir_all(dir)
                .and_then(|_| std::fs::write(&path, toml::to_string(&plan).unwrap_or_default()))
                .with_context(|| format!("writing {}", path.display()))?;
            eprintln!(
                "wrote {}; replay: rollcall-sim run --nodes {nodes} --seed {seed} --profile {profile} --file {}",
                path.display(),
                path.display()
            );
            Ok(())
        },
    )
}

fn cmd_seeds(args: SeedsArgs) -> Result<ExitCode> {
    if args.scenario == Scenario::Join {
        bail!("seeds checks formed scenarios; join has no fault to agree after");
    }
    let (first_seed, count) = args.range.span();
    let batch = Batch {
        kind: BatchKind::Seeds {
            scenario: args.scenario,
        },
        nodes: args.nodes,
        profile: args.profile,
        sync: !args.no_sync,
        first_seed,
        seeds: count,
    };
    let tuning = if args.no_sync {
        Tuning::without_sync()
    } else {
        Tuning::default()
    };
    run_batch(
        &batch,
        &args.par,
        args.json,
        |seed| {
            let c = seeds::check_seed(args.scenario, seed, args.nodes, args.profile, tuning)?;
            Ok(SeedRecord::of_check(&batch, &c)?)
        },
        |_| Ok(()),
    )
}

fn cmd_merge(args: MergeArgs) -> Result<ExitCode> {
    let mut texts = Vec::new();
    for path in &args.files {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        texts.push((path.display().to_string(), text));
    }
    let (batch, records) = shard::merge(texts.iter().map(|(f, t)| (f.as_str(), t.as_str())))?;
    let mut summary = Summary::new(batch, args.json, records.len());
    let (mut out, mut err) = (std::io::stdout().lock(), std::io::stderr().lock());
    summary.start(&mut out)?;
    for r in &records {
        summary.seed(r, &mut out, &mut err)?;
    }
    Ok(if summary.finish(&mut out, &mut err)? {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn cmd_bench(args: BenchArgs) -> Result<ExitCode> {
    let exe = std::env::current_exe().context("locating rollcall-sim")?;
    let dir = exe.parent().context("locating the build directory")?;
    let floor = dir.join("foca_floor");
    if !floor.exists() {
        bail!(
            "{} not found: build it with `cargo build --release -p rollcall-sim --bins`",
            floor.display()
        );
    }
    let start_load = bench::load_average();
    let results = bench::run_all(&exe, &floor, args.quick, args.threads_only, &mut |line| {
        eprintln!("{line}")
    })?;
    let load = format!(
        "{start_load} at the start, {} at the end",
        bench::load_average()
    );
    let section = bench::markdown(&results, args.quick, &load);
    println!("{section}");
    if let Some(path) = &args.write {
        bench::write_section(path, &section)?;
        eprintln!("wrote the Simulator section of {}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}
