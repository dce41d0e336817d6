//! Thread scaling: the same cases at `--threads 1` and `--threads 2`, side
//! by side in one benchmark run, with the check that both gave the same
//! event log.
//!
//! A run's nodes share a window of virtual time only as long as the
//! network's shortest latency (see [`crate::parallel`]), so how much a
//! second thread helps depends on how many wakeups fall into a window; a
//! sweep's seeds are independent and scale with the cores.

use serde_json::Value;

use crate::bench::{case, Group, Measured};

/// The prefix of every scaling case's name (the main table leaves them out).
pub const PREFIX: &str = "threads-";

/// The thread counts compared.
pub const THREADS: [usize; 2] = [1, 2];

/// Each compared case: its name, its arguments (without `--threads`), and
/// the wall-time ratio `--threads 2` / `--threads 1` it should reach.
const CASES: [(&str, &str, f64); 4] = [
    (
        "threads-storm-2000",
        "run --nodes 2000 --scenario join --join-window 30 --duration 60 --json",
        0.6,
    ),
    (
        "threads-partition-heal-1000",
        "run --nodes 1000 --scenario partition-heal --json",
        1.05,
    ),
    (
        "threads-sweep-200",
        "sweep --seeds 200 --nodes 30 --json",
        0.55,
    ),
    (
        "threads-storm-3000",
        "run --nodes 3000 --scenario join --join-window 30 --duration 60 --json",
        0.6,
    ),
];

/// The scaling groups: each case at every count of [`THREADS`], one after
/// the other. `quick` leaves out the 3,000-node storm.
pub fn groups(quick: bool) -> Vec<Group> {
    CASES
        .iter()
        .filter(|(name, _, _)| !quick || *name != "threads-storm-3000")
        .map(|(name, args, _)| Group {
            cases: THREADS
                .iter()
                .map(|t| {
                    let mut c = case(name, "rollcall-sim", args);
                    c.args.extend(["--threads".to_owned(), t.to_string()]);
                    c
                })
                .collect(),
            rounds: 1,
        })
        .collect()
}

fn threads_of(m: &Measured) -> Option<usize> {
    let i = m.case.args.iter().position(|a| a == "--threads")?;
    m.case.args.get(i + 1)?.parse().ok()
}

/// The wall time of the whole process (a sweep's JSON lines are per seed).
fn wall(m: &Measured) -> Option<f64> {
    m.json.get("process_wall_s").and_then(Value::as_f64)
}

/// The Markdown table of the scaling cases found in `results` (empty if
/// none ran).
pub fn markdown(results: &[Measured]) -> String {
    let mut rows = String::new();
    for (name, _, target) in CASES {
        let find = |t: usize| {
            results
                .iter()
                .find(|m| m.case.name == name && threads_of(m) == Some(t))
        };
        let (Some(one), Some(two)) = (find(THREADS[0]), find(THREADS[1])) else {
            continue;
        };
        let hash = |m: &Measured| {
            m.json
                .get("event_log_hash")
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        let same = match (hash(one), hash(two)) {
            (Some(a), Some(b)) if a == b => format!("yes ({a})"),
            (Some(_), Some(_)) => "**no**".to_owned(),
            _ => "–".to_owned(),
        };
        // A sweep's seeds run side by side, not its windows: no bound.
        let bound = one
            .json
            .get("thread_bounds")
            .filter(|_| one.case.args.first().is_some_and(|a| a == "run"))
            .and_then(Value::as_array)
            .and_then(|pairs| {
                pairs.iter().find_map(|p| {
                    (p.get(0)?.as_u64()? == 2)
                        .then(|| p.get(1)?.as_f64())
                        .flatten()
                })
            })
            .map_or("–".to_owned(), |x| format!("{x:.2}x"));
        let guessed = one
            .json
            .get("guessed_bound")
            .and_then(Value::as_f64)
            .filter(|_| one.case.args.first().is_some_and(|a| a == "run"))
            .map_or("–".to_owned(), |x| format!("{x:.2}x"));
        let per_window = two
            .json
            .get("events_per_window")
            .and_then(Value::as_f64)
            .map_or("–".to_owned(), |x| format!("{x:.1}"));
        let (ratio, met) = match (wall(one), wall(two)) {
            (Some(a), Some(b)) if a > 0.0 => {
                let r = b / a;
                (format!("{r:.2}x"), if r <= target { "yes" } else { "no" })
            }
            _ => ("–".to_owned(), "–"),
        };
        rows.push_str(&format!(
            "| {name} | {} | {} | {ratio} | {bound} | {guessed} | ≤ {target:.2}x: {met} | {per_window} | {same} |\n",
            wall(one).map_or("–".to_owned(), |w| format!("{w:.2}")),
            wall(two).map_or("–".to_owned(), |w| format!("{w:.2}")),
        ));
    }
    if rows.is_empty() {
        return String::new();
    }
    let mut s = String::from(
        "\nThreads (`--threads 1` against `--threads 2`, one after the other in this run; \
         wall time of the whole process; a sweep's hash is its last seed's; best possible: \
         the one-thread run's `thread_bounds` for two threads, its nodes' work of each window split \
         the best way over two threads with free hand-offs; in the crew's order: the same with each \
         window's nodes taken in the crew's order, costliest first by its guess, `guessed_bound`):\n\n\
         | case | 1 thread wall s | 2 threads wall s | ratio | best possible | in the crew's order | target | wakeups per window | same event log |\n\
         |---|---|---|---|---|---|---|---|---|\n",
    );
    s.push_str(&rows);
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn measured(name: &'static str, args: &str, threads: usize, json: Value) -> Measured {
        let mut c = case(name, "rollcall-sim", args);
        c.args.extend(["--threads".to_owned(), threads.to_string()]);
        Measured {
            case: c,
            json,
            walls: Vec::new(),
        }
    }

    #[test]
    fn the_table_shows_a_runs_two_thread_bound_and_none_for_a_sweep() {
        let run = |wall: f64| {
            serde_json::json!({
                "process_wall_s": wall,
                "event_log_hash": "ab",
                "events_per_window": 4.7,
                "thread_bounds": [[2, 0.58], [4, 0.4]],
                "guessed_bound": 0.59,
            })
        };
        let results = vec![
            measured(CASES[0].0, CASES[0].1, 1, run(10.0)),
            measured(CASES[0].0, CASES[0].1, 2, run(7.0)),
            measured(CASES[2].0, CASES[2].1, 1, run(10.0)),
            measured(CASES[2].0, CASES[2].1, 2, run(5.0)),
        ];
        let table = markdown(&results);
        assert!(
            table.contains(
                "| threads-storm-2000 | 10.00 | 7.00 | 0.70x | 0.58x | 0.59x | ≤ 0.60x: no |"
            ),
            "{table}"
        );
        assert!(
            table.contains("| threads-sweep-200 | 10.00 | 5.00 | 0.50x | – | – | ≤ 0.55x: yes |"),
            "{table}"
        );
    }
}
