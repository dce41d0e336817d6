//! The simulator benchmark: speed, memory and convergence from 100 to 3,000
//! nodes (and why not 10,000), beside the bare-foca floor (`src/bin/foca_floor.rs`), as a
//! Markdown section for BENCHMARKS.md.
//!
//! Every measurement runs in its own process (peak RSS is per process) and
//! is described by the exact command that reproduces it.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

/// One benchmark case: a command line and what it measures.
#[derive(Clone, Debug)]
pub struct Case {
    /// A short name for the table.
    pub name: &'static str,
    /// `rollcall-sim` or `foca_floor`.
    pub program: &'static str,
    /// The arguments.
    pub args: Vec<String>,
}

/// Cases run together: `rounds` times one after another (a, b, a, b, ...),
/// so a pair compared in a ratio sees the same machine.
#[derive(Clone, Debug)]
pub struct Group {
    /// The cases, in the order each round runs them.
    pub cases: Vec<Case>,
    /// How many times each case runs.
    pub rounds: usize,
}

/// A case and the JSON objects its runs printed.
#[derive(Clone, Debug)]
pub struct Measured {
    /// The case.
    pub case: Case,
    /// The run with the median wall time (the table shows this one).
    pub json: Value,
    /// Every run's wall time, in the order they ran.
    pub walls: Vec<f64>,
}

/// Why the benchmark failed.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// A case's process could not run or printed no JSON.
    #[error("benchmark case {name}: {message}")]
    Case {
        /// The case.
        name: String,
        /// What went wrong.
        message: String,
    },
    /// BENCHMARKS.md could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The error.
        source: std::io::Error,
    },
}

/// A case of `program` with whitespace-separated `args`.
pub fn case(name: &'static str, program: &'static str, args: &str) -> Case {
    Case {
        name,
        program,
        args: args.split_whitespace().map(str::to_owned).collect(),
    }
}

fn once(c: Case) -> Group {
    Group {
        cases: vec![c],
        rounds: 1,
    }
}

/// The cases, slow ones left out with `quick`.
pub fn groups(quick: bool) -> Vec<Group> {
    let mut v = vec![
        once(case(
            "crash-100",
            "rollcall-sim",
            "run --nodes 100 --scenario crash --json --threads 1",
        )),
        once(case(
            "crash-1000",
            "rollcall-sim",
            "run --nodes 1000 --scenario crash --json --threads 1",
        )),
        once(case(
            "partition-heal-1000",
            "rollcall-sim",
            "run --nodes 1000 --scenario partition-heal --json --threads 1",
        )),
        once(case(
            "join-100",
            "rollcall-sim",
            "run --nodes 100 --scenario join --duration 60 --json --threads 1",
        )),
        Group {
            cases: vec![
                case(
                    "floor-join-1000",
                    "foca_floor",
                    "--nodes 1000 --window 10 --until 300",
                ),
                case(
                    "join-1000",
                    "rollcall-sim",
                    "run --nodes 1000 --scenario join --duration 300 --json --threads 1",
                ),
            ],
            rounds: 3,
        },
    ];
    if !quick {
        v.extend([
            once(case(
                "crash-2000",
                "rollcall-sim",
                "run --nodes 2000 --scenario crash --duration 30 --json --threads 1",
            )),
            Group {
                cases: vec![
                    case(
                        "floor-storm-3000",
                        "foca_floor",
                        "--nodes 3000 --window 30 --until 60",
                    ),
                    case(
                        "storm-3000",
                        "rollcall-sim",
                        "run --nodes 3000 --scenario join --join-window 30 --duration 60 --json --threads 1",
                    ),
                ],
                rounds: 1,
            },
            once(case(
                "crash-10000",
                "rollcall-sim",
                "run --nodes 10000 --scenario crash --formation restored --duration 30 --json --threads 1",
            )),
        ]);
    }
    v
}

/// The 1, 5 and 15-minute load averages (other work on the machine skews wall times).
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|| "unknown".to_owned())
}

/// Runs every group, the thread-scaling ones ([`crate::scaling`]) last
/// (only those with `threads_only`), reporting each finished run through
/// `log`.
pub fn run_all(
    sim: &Path,
    floor: &Path,
    quick: bool,
    threads_only: bool,
    log: &mut dyn FnMut(String),
) -> Result<Vec<Measured>, BenchError> {
    let mut all = if threads_only {
        Vec::new()
    } else {
        groups(quick)
    };
    all.extend(crate::scaling::groups(quick));
    let mut out = Vec::new();
    for g in all {
        let mut runs: Vec<Vec<Value>> = vec![Vec::new(); g.cases.len()];
        for round in 0..g.rounds {
            for (c, done) in g.cases.iter().zip(&mut runs) {
                let exe = if c.program == "foca_floor" {
                    floor
                } else {
                    sim
                };
                log(format!(
                    "running {} ({} of {}): {} {}",
                    c.name,
                    round + 1,
                    g.rounds,
                    c.program,
                    c.args.join(" ")
                ));
                let json = match run_case(exe, c) {
                    Ok(json) => {
                        log(format!(
                            "  wall {:.2} s, peak RSS {:.0} MiB",
                            f(&json, "wall_s"),
                            f(&json, "peak_rss_mib")
                        ));
                        json
                    }
                    Err(e) => {
                        // One failed case does not lose the others' measurements.
                        log(format!("  FAILED: {e}"));
                        serde_json::json!({ "error": e.to_string() })
                    }
                };
                done.push(json);
            }
        }
        for (c, jsons) in g.cases.into_iter().zip(runs) {
            out.push(median_run(c, jsons));
        }
    }
    Ok(out)
}

/// The run with the median wall time stands for the case (a failed run, if
/// any, stands for it instead: failures are not hidden).
fn median_run(case: Case, mut jsons: Vec<Value>) -> Measured {
    let walls: Vec<f64> = jsons.iter().map(|j| f(j, "wall_s")).collect();
    if let Some(failed) = jsons.iter().position(|j| j.get("error").is_some()) {
        let json = jsons.swap_remove(failed);
        return Measured { case, json, walls };
    }
    let mut order: Vec<usize> = (0..jsons.len()).collect();
    order.sort_by(|&a, &b| walls[a].total_cmp(&walls[b]));
    let json = jsons.swap_remove(order[order.len() / 2]);
    Measured { case, json, walls }
}

fn run_case(exe: &Path, c: &Case) -> Result<Value, BenchError> {
    let err = |message: String| BenchError::Case {
        name: c.name.to_owned(),
        message,
    };
    let started = std::time::Instant::now();
    let output = Command::new(exe)
        .args(&c.args)
        .output()
        .map_err(|e| err(e.to_string()))?;
    let process_wall_s = started.elapsed().as_secs_f64();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .ok_or_else(|| {
            err(format!(
                "no JSON output (status {}): {}",
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            ))
        })?;
    let mut json: Value = serde_json::from_str(line).map_err(|e| err(e.to_string()))?;
    if let Some(obj) = json.as_object_mut() {
        obj.insert("process_wall_s".into(), process_wall_s.into());
    }
    Ok(json)
}

fn f(v: &Value, key: &str) -> f64 {
    v.get(key).and_then(Value::as_f64).unwrap_or(f64::NAN)
}

fn opt(v: &Value, key: &str) -> String {
    match v.get(key).and_then(Value::as_f64) {
        Some(x) => format!("{x:.2}"),
        None => "–".to_owned(),
    }
}

fn command_line(m: &Measured) -> String {
    let prefix = if m.case.program == "foca_floor" {
        "cargo run --release -p rollcall-sim --bin foca_floor --"
    } else {
        "cargo run --release -p rollcall-sim --"
    };
    format!("{prefix} {}", m.case.args.join(" "))
}

/// What the 10,000-node row shows, and what bounds it, from its numbers.
fn ten_thousand(results: &[Measured]) -> String {
    let Some(m) = results.iter().find(|m| m.case.name == "crash-10000") else {
        return "\n10,000 nodes: left out of this run (`--quick`).\n".to_owned();
    };
    let j = &m.json;
    if j.get("error").is_some() {
        return "\n10,000 nodes: the run failed (see the table).\n".to_owned();
    }
    let n = j.get("nodes").and_then(Value::as_u64).unwrap_or(0) as f64;
    let per_pair = f(j, "peak_rss_mib") * 1024.0 * 1024.0 / (n * n);
    format!(
        "
10,000 nodes (crash-10000) start restored: `--formation restored` gives
every node every other node's identity through `Node::restore_members`, with
no join storm, then one node crashes. Crash detection: first {} s, all {} s
after the crash; {:.0} s wall for {:.0} virtual s, peak RSS {:.0} MiB. What
bounds it: memory is N^2 member records (every node holds every other),
about {:.0} bytes per (node, member) pair here; time is foca's linear scan of
its member list on every update it applies: restoring a view of N members
scans it N times (O(N^2) per node, O(N^3) for the cluster), and every
gossiped update costs O(N) on each node that receives it.
",
        opt(j, "detect_first_s"),
        opt(j, "detect_all_s"),
        f(j, "wall_s"),
        f(j, "virtual_s"),
        f(j, "peak_rss_mib"),
        per_pair,
    )
}

/// The Markdown section (starting with `## Simulator`); `load` says how
/// busy the machine was (see [`load_average`]).
pub fn markdown(results: &[Measured], quick: bool, load: &str) -> String {
    let mut s = String::from("## Simulator\n\n");
    s.push_str(
        "Measured with `sim/bench.sh` (release build, one process per row; peak RSS is \
         the process's VmHWM). Virtual time is simulated seconds; node-s/wall s is \
         simulated node-seconds per wall-clock second. Reproduce everything with \
         `sim/bench.sh`, or one row with the command under the table.\n\n",
    );
    s.push_str(&format!(
        "Machine: 2 cores, shared with other builds; load average (1, 5, 15 min) {load}. \
         Wall times are only comparable within one run of the script.\n\n"
    ));
    s.push_str(
        "| case | nodes | virtual s | wall s | node-s / wall s | peak RSS MiB | converged | fraction | slowest node knows | formation s | convergence s | detect first / all s | datagrams/node/s | bytes/node/s |\n",
    );
    s.push_str("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    for m in results
        .iter()
        .filter(|m| !m.case.name.starts_with(crate::scaling::PREFIX))
    {
        let j = &m.json;
        if let Some(e) = j.get("error").and_then(Value::as_str) {
            s.push_str(&format!(
                "| {} | failed: {} |\n",
                m.case.name,
                e.replace('|', "/")
            ));
            continue;
        }
        let is_floor = m.case.program == "foca_floor";
        let nodes = j.get("nodes").and_then(Value::as_u64).unwrap_or(0);
        s.push_str(&format!(
            "| {} | {} | {:.0} | {:.2} | {} | {:.0} | {} | {:.3} | {} | {} | {} | {} / {} | {} | {} |\n",
            m.case.name,
            nodes,
            f(j, "virtual_s"),
            f(j, "wall_s"),
            if is_floor { "–".to_owned() } else { format!("{:.0}", f(j, "node_seconds_per_wall_s")) },
            f(j, "peak_rss_mib"),
            j.get("converged").and_then(Value::as_bool).map_or("–".to_owned(), |b| b.to_string()),
            f(j, "converged_fraction"),
            j.get("slowest_node_members").and_then(Value::as_u64).unwrap_or(0),
            if is_floor { "–".to_owned() } else { opt(j, "formation_s") },
            opt(j, "convergence_s"),
            opt(j, "detect_first_s"),
            opt(j, "detect_all_s"),
            if is_floor { "–".to_owned() } else { format!("{:.1}", f(j, "datagrams_per_node_s")) },
            if is_floor { "–".to_owned() } else { format!("{:.0}", f(j, "bytes_per_node_s")) },
        ));
    }
    let ratio = |a: &str, b: &str, key: &str| {
        let get = |n: &str| {
            results
                .iter()
                .find(|m| m.case.name == n)
                .map(|m| f(&m.json, key))
        };
        match (get(a), get(b)) {
            (Some(x), Some(y)) if y > 0.0 => format!("{:.2}x", x / y),
            _ => "not measured".to_owned(),
        }
    };
    let repeated: Vec<String> = results
        .iter()
        .filter(|m| m.walls.len() > 1)
        .map(|m| {
            let walls: Vec<String> = m.walls.iter().map(|w| format!("{w:.2}")).collect();
            format!("{} {} s", m.case.name, walls.join(", "))
        })
        .collect();
    if !repeated.is_empty() {
        s.push_str(&format!(
            "\nRepeated cases ran in turns (floor, rollcall, floor, ...); the table shows \
             each one's median run. Wall times of every run: {}.\n",
            repeated.join("; ")
        ));
    }
    s.push_str("\nrollcall's simulator against the bare-foca floor on the same scenario (medians, measured side by side in this run):\n\n");
    s.push_str(&format!(
        "- 1,000 nodes joining one seed over 10 s, to 300 virtual s: wall time {} the floor, peak RSS {} (target: at most 3x the floor and under 1 GiB)\n",
        ratio("join-1000", "floor-join-1000", "wall_s"),
        ratio("join-1000", "floor-join-1000", "peak_rss_mib"),
    ));
    if !quick {
        s.push_str(&format!(
            "- 3,000-node join storm over 30 s, to 60 virtual s: wall time {} the floor, peak RSS {} (target: at most 2x)\n",
            ratio("storm-3000", "floor-storm-3000", "wall_s"),
            ratio("storm-3000", "floor-storm-3000", "peak_rss_mib"),
        ));
    }
    s.push_str(&ten_thousand(results));
    s.push_str(&crate::scaling::markdown(results));
    s.push_str("\nCommands (from the repository root):\n\n```sh\n");
    for m in results {
        s.push_str(&command_line(m));
        s.push('\n');
    }
    s.push_str("```\n");
    s
}

/// Replaces (or appends) the `## Simulator` section of the Markdown file at
/// `path`, leaving every other section as it is.
pub fn write_section(path: &Path, section: &str) -> Result<(), BenchError> {
    let io = |source| BenchError::Io {
        path: path.display().to_string(),
        source,
    };
    let old = match std::fs::read_to_string(path) {
        Ok(s) => s,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => "# Benchmarks\n".to_owned(),
        Err(e) => return Err(io(e)),
    };
    std::fs::write(path, replace_section(&old, section)).map_err(io)
}

/// A line in the `## Simulator` section below which the text is written by
/// hand (the sync and lifecycle measurements): `replace_section` keeps it.
pub const KEEP_MARKER: &str = "<!-- kept by sim/bench.sh: hand-measured below -->";

/// `doc` with its `## Simulator` section replaced by `section` (or
/// appended). The old section's text from [`KEEP_MARKER`] on is kept.
pub fn replace_section(doc: &str, section: &str) -> String {
    let section = section.trim_end();
    let lines: Vec<&str> = doc.lines().collect();
    let start = lines.iter().position(|l| l.trim_end() == "## Simulator");
    match start {
        Some(a) => {
            let end = lines[a + 1..]
                .iter()
                .position(|l| l.starts_with("## "))
                .map(|k| a + 1 + k)
                .unwrap_or(lines.len());
            let mut out: Vec<String> = lines[..a].iter().map(|s| s.to_string()).collect();
            out.push(section.to_owned());
            if let Some(k) = lines[a + 1..end]
                .iter()
                .position(|l| l.trim_end() == KEEP_MARKER)
            {
                out.push(String::new());
                let kept = lines[a + 1 + k..end].join("\n");
                out.push(kept.trim_end().to_owned());
            }
            if end < lines.len() {
                out.push(String::new());
                out.extend(lines[end..].iter().map(|s| s.to_string()));
            }
            let mut text = out.join("\n");
            text.push('\n');
            text
        }
        None => {
            let mut text = doc.trim_end().to_owned();
            text.push_str("\n\n");
            text.push_str(section);
            text.push('\n');
            text
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_simulator_section_is_replaced_and_other_sections_are_kept() {
        let doc = "# B\n\n## Core\nx\n\n## Simulator\nold\n\n## Later\ny\n";
        let out = replace_section(doc, "## Simulator\nnew\n");
        assert_eq!(
            out,
            "# B\n\n## Core\nx\n\n## Simulator\nnew\n\n## Later\ny\n"
        );
        let out = replace_section("# B\n", "## Simulator\nnew");
        assert_eq!(out, "# B\n\n## Simulator\nnew\n");
    }

    #[test]
    fn the_hand_measured_part_below_the_marker_is_kept() {
        let doc = format!("## Simulator\nold\n{KEEP_MARKER}\nmine\n\n## Later\ny\n");
        let out = replace_section(&doc, "## Simulator\nnew");
        assert_eq!(
            out,
            format!("## Simulator\nnew\n\n{KEEP_MARKER}\nmine\n\n## Later\ny\n")
        );
    }
}
