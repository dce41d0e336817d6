//! A batch of seeds (`sweep`, or the `seeds` check) as it is printed: a
//! header, one line per seed, a summary and the commands that reproduce the
//! failing seeds.
//!
//! Each seed's outcome becomes a [`SeedRecord`], which is also the JSON line
//! a shard writes (`--out`). A batch run and a merge of its shards' lines
//! print through the same [`Summary`], so they print the same text.

use std::fmt::Write as _;
use std::io::{self, Write};

use serde::{Deserialize, Serialize};

use crate::network::NetProfile;
use crate::scenario::Scenario;
use crate::seeds::{self, SeedCheck};
use crate::sweep::{self, SeedOutcome};
use crate::tuning::Tuning;

/// Which command a batch runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "command")]
pub enum BatchKind {
    /// `sweep`: a random fault profile per seed, then the liveness check.
    Sweep,
    /// `seeds`: one scenario per seed, with the lifecycle checks.
    Seeds {
        /// The scenario.
        scenario: Scenario,
    },
}

/// What a batch runs: the command, its parameters and its whole seed range
/// (every shard of one batch carries the same `Batch`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Batch {
    /// The command.
    #[serde(flatten)]
    pub kind: BatchKind,
    /// Nodes per run.
    pub nodes: u32,
    /// Link timings and protocol profile.
    pub profile: NetProfile,
    /// Full-state sync on (`seeds --no-sync` turns it off).
    pub sync: bool,
    /// The first seed of the range.
    pub first_seed: u64,
    /// How many seeds the whole range holds, over every shard.
    pub seeds: u64,
}

impl Batch {
    /// The seeds of the whole range, in order.
    pub fn seed_list(&self) -> Vec<u64> {
        (self.first_seed..self.first_seed.saturating_add(self.seeds)).collect()
    }

    fn tuning(&self) -> Tuning {
        if self.sync {
            Tuning::default()
        } else {
            Tuning::without_sync()
        }
    }

    /// The line printed before the seeds, for `count` of them.
    pub fn header(&self, count: usize) -> String {
        match self.kind {
            BatchKind::Sweep => {
                let config = self.profile.config(self.nodes.max(1));
                let bound = sweep::liveness_bound(&config);
                format!(
                    "sweep: {count} seeds x {} nodes, {} profile; fault phase {} s, liveness bound {:.1} s ({:.0} protocol periods)",
                    self.nodes,
                    self.profile,
                    sweep::FAULT_PHASE_S,
                    bound.as_secs_f64(),
                    bound.as_secs_f64() / config.swim.probe_period.as_secs_f64()
                )
            }
            BatchKind::Seeds { scenario } => {
                let config = self.profile.configure(self.nodes.max(1), &self.tuning());
                format!(
                    "seeds: {count} x {} nodes, scenario {scenario}, {} profile, sync {}; agreement bound {:.1} s ({:.0} protocol periods) after the last operation",
                    self.nodes,
                    self.profile,
                    if self.sync { "on" } else { "off" },
                    seeds::agreement_bound(&config).as_secs_f64(),
                    seeds::bound_in_periods(&config)
                )
            }
        }
    }
}

/// One seed's outcome: what the batch prints of it, and the JSON line a
/// shard writes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SeedRecord {
    /// The batch the seed belongs to.
    pub batch: Batch,
    /// The seed.
    pub seed: u64,
    /// Whether every check passed.
    pub ok: bool,
    /// The one-line account (`sweep::describe`, `seeds::describe`).
    pub line: String,
    /// Seconds from the heal or last operation until agreement, if reached.
    pub convergence_s: Option<f64>,
    /// The largest view any node held.
    pub max_view_size: u32,
    /// For a failing seed, the note printed on stderr.
    pub failure: Option<String>,
    /// The command that reproduces this seed.
    pub reproduce: String,
    /// The object `--json` prints for the seed: the run's report with `ok`
    /// and `faults` (sweep) or `failures` (seeds).
    pub report: serde_json::Value,
}

impl SeedRecord {
    /// The record of one sweep seed.
    pub fn of_sweep(batch: &Batch, o: &SeedOutcome) -> Result<Self, serde_json::Error> {
        let mut report = serde_json::to_value(&o.report)?;
        if let Some(obj) = report.as_object_mut() {
            obj.insert("ok".into(), serde_json::Value::Bool(o.ok));
            obj.insert("faults".into(), serde_json::Value::String(o.faults.clone()));
        }
        let reproduce = sweep::reproduce(o.seed, batch.nodes, batch.profile);
        Ok(Self {
            batch: batch.clone(),
            seed: o.seed,
            ok: o.ok,
            line: sweep::describe(o),
            convergence_s: o.converged_after_s,
            max_view_size: o.report.max_view_size,
            failure: (!o.ok).then(|| {
                format!(
                    "seed {} failed the liveness check; reproduce with:\n  {reproduce}\n  (the run: {})",
                    o.seed, o.report.reproduce
                )
            }),
            reproduce,
            report,
        })
    }

    /// The record of one seed of the `seeds` check.
    pub fn of_check(batch: &Batch, c: &SeedCheck) -> Result<Self, serde_json::Error> {
        let mut report = serde_json::to_value(&c.report)?;
        if let Some(obj) = report.as_object_mut() {
            obj.insert("ok".into(), serde_json::Value::Bool(c.ok()));
            obj.insert("failures".into(), serde_json::json!(c.failures));
        }
        let scenario = match batch.kind {
            BatchKind::Seeds { scenario } => scenario,
            BatchKind::Sweep => Scenario::Crash,
        };
        let reproduce = seeds::reproduce(scenario, c.seed, batch.nodes, batch.profile, batch.sync);
        Ok(Self {
            batch: batch.clone(),
            seed: c.seed,
            ok: c.ok(),
            line: seeds::describe(c),
            convergence_s: c.report.convergence_s,
            max_view_size: c.report.max_view_size,
            failure: (!c.ok())
                .then(|| format!("seed {} failed; reproduce with:\n  {reproduce}", c.seed)),
            reproduce,
            report,
        })
    }
}

/// Prints a batch seed by seed and sums it up; a batch run and a merge of
/// its shards print through this.
#[derive(Debug)]
pub struct Summary {
    batch: Batch,
    json: bool,
    count: usize,
    failed: Vec<(u64, String)>,
    worst: f64,
    worst_view: u32,
}

impl Summary {
    /// A summary of `count` seeds of `batch`; with `json`, each seed prints
    /// as one JSON object and neither header nor summary line prints.
    pub fn new(batch: Batch, json: bool, count: usize) -> Self {
        Self {
            batch,
            json,
            count,
            failed: Vec::new(),
            worst: 0.0,
            worst_view: 0,
        }
    }

    /// Prints the header (not in JSON mode).
    pub fn start(&self, out: &mut dyn Write) -> io::Result<()> {
        if !self.json {
            writeln!(out, "{}", self.batch.header(self.count))?;
        }
        Ok(())
    }

    /// Prints one seed: its line (or JSON object) on `out`, a failure's
    /// note on `err`. Seeds must come in order.
    pub fn seed(
        &mut self,
        r: &SeedRecord,
        out: &mut dyn Write,
        err: &mut dyn Write,
    ) -> io::Result<()> {
        if self.json {
            writeln!(out, "{}", r.report)?;
        } else {
            writeln!(out, "{}", r.line)?;
        }
        if let Some(t) = r.convergence_s {
            self.worst = self.worst.max(t);
        }
        self.worst_view = self.worst_view.max(r.max_view_size);
        if let Some(note) = &r.failure {
            writeln!(err, "{note}")?;
        }
        if !r.ok {
            self.failed.push((r.seed, r.reproduce.clone()));
        }
        Ok(())
    }

    /// Prints the summary line and the failing seeds' commands; returns
    /// whether every seed passed.
    pub fn finish(&self, out: &mut dyn Write, err: &mut dyn Write) -> io::Result<bool> {
        let (count, failed, worst) = (self.count, self.failed.len(), self.worst);
        if !self.json {
            let mut line = String::new();
            match self.batch.kind {
                BatchKind::Sweep => {
                    let _ = write!(
                        line,
                        "{} of {count} seeds agreed within the bound; slowest agreement {worst:.2} s after heal",
                        count - failed
                    );
                }
                BatchKind::Seeds { .. } => {
                    let config = self
                        .batch
                        .profile
                        .configure(self.batch.nodes.max(1), &self.batch.tuning());
                    let _ = write!(
                        line,
                        "{} of {count} seeds passed (agreement within {:.1} s, no resurrection, view bound {}); slowest agreement {worst:.2} s after the last operation; largest view {} records",
                        count - failed,
                        seeds::agreement_bound(&config).as_secs_f64(),
                        seeds::view_bound(self.batch.nodes),
                        self.worst_view
                    );
                }
            }
            writeln!(out, "{line}")?;
        }
        if self.failed.is_empty() {
            return Ok(true);
        }
        let seeds: Vec<u64> = self.failed.iter().map(|(s, _)| *s).collect();
        writeln!(err, "failed seeds: {seeds:?}")?;
        for (_, reproduce) in &self.failed {
            writeln!(err, "  {reproduce}")?;
        }
        Ok(false)
    }
}
