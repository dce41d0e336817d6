//! rollcall-sim: a deterministic simulator for rollcall clusters.
//!
//! It runs the very same [`rollcall::core::Node`] the agent runs, thousands
//! of them in one process, on a virtual clock that jumps to the next wakeup
//! and a simulated network with latency, jitter, loss, duplication and
//! partitions. One u64 seed decides everything, so a seed replays a run
//! byte for byte; every report carries the command that reproduces it.
//!
//! | file | concept |
//! |------|---------|
//! | [`rng`] | the seed and the streams derived from it |
//! | [`network`] | links, loss, duplication, partitions, profiles |
//! | [`world`] | nodes, the virtual clock, the event queue |
//! | [`parallel`] | windows of independent nodes, handled on several threads, merged in a fixed order |
//! | [`crew`] | helper threads that take a share of a window within a microsecond |
//! | [`measure`] | from the events: correct views, detection, false positives, resurrections, the curve |
//! | [`audit`] | from the nodes themselves: views re-read, record counts |
//! | [`eventlog`] | the hashed event log that proves determinism |
//! | [`scenario`] | built-in scenarios and scenario files as data |
//! | [`run`](mod@run) | formation, timeline, report |
//! | [`report`] | the JSON object and the human summary |
//! | [`sweep`] | randomised fault profiles with a liveness check |
//! | [`seeds`] | one scenario across many seeds, with agreement, resurrection and view-size checks |
//! | [`batch`] | a batch of seeds as printed: header, a line per seed, summary, seed records |
//! | [`pool`] | independent runs on every core, results in input order |
//! | [`shard`] | a batch split across machines (`--shard K/N`) and merged back |
//! | [`tuning`] | sync on/off and autoclean on top of a profile |
//! | [`plot`] | the SVG convergence curve |
//! | [`bench`](mod@bench) | the benchmark section of BENCHMARKS.md |
//! | [`scaling`] | the benchmark's `--threads 1` against `--threads 2` cases |

// Unsafe code only in `crew`, where a borrowed closure is handed to
// long-lived threads (its safety argument is written there).
#![deny(unsafe_code)]
#![deny(missing_docs)]

pub mod audit;
pub mod batch;
pub mod bench;
#[allow(unsafe_code)]
pub mod crew;
pub mod error;
pub mod eventlog;
pub mod measure;
pub mod network;
pub mod parallel;
pub mod plot;
pub mod pool;
pub mod report;
pub mod rng;
pub mod run;
pub mod scaling;
pub mod scenario;
pub mod seeds;
pub mod shard;
pub mod sweep;
pub mod tuning;
pub mod world;

pub use error::SimError;
pub use network::NetProfile;
pub use report::RunReport;
pub use run::{run, Outcome, RunSpec};
pub use scenario::{Plan, Scenario, ScenarioError};
pub use tuning::Tuning;
pub use world::{World, WorldConfig};
