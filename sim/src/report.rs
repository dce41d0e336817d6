//! The result of one run: the JSON object `--json` prints and the summary
//! people read.

use std::fmt;

use serde::Serialize;

use crate::measure::{CrashCause, CrashRecord, FalseDownCauses, Mark, PartitionRecord};
use crate::network::NetStats;

/// Everything measured in one run. Serialised as the `--json` object.
#[derive(Clone, Debug, Serialize)]
pub struct RunReport {
    /// The run's seed.
    pub seed: u64,
    /// How many nodes the world holds.
    pub nodes: u32,
    /// The scenario's name (or the scenario file's path).
    pub scenario: String,
    /// The network and protocol profile.
    pub profile: String,
    /// Whether the formation step reached complete views (true when there was none).
    pub formed: bool,
    /// Virtual seconds the formation step took (0 when there was none).
    pub formation_s: f64,
    /// Whether every live node's view was correct at the end (every live
    /// node; the live nodes on its side if a partition still stood).
    pub converged: bool,
    /// Virtual seconds from the last operation until every view was correct; null if never.
    pub convergence_s: Option<f64>,
    /// The fraction of live nodes whose view was correct at the end.
    pub converged_fraction: f64,
    /// How many members the live node that knows the fewest knows (itself excluded).
    pub slowest_node_members: u64,
    /// Live nodes at the end.
    pub live_nodes: u32,
    /// Worst time over crashes until the first live node marked the crashed node down.
    pub detect_first_s: Option<f64>,
    /// Worst time over crashes until no live node held the crashed node any more.
    pub detect_all_s: Option<f64>,
    /// Every crash and its detection.
    pub crashes: Vec<CrashRecord>,
    /// Detection split by what crashed (process or host), for the causes
    /// that occurred.
    pub detection_by_cause: Vec<CauseDetection>,
    /// Live, reachable identities (node, generation) that some node declared down.
    pub false_positives: usize,
    /// `MemberDown` events that named a live, reachable identity.
    pub false_down_events: u64,
    /// Those events split by what was slow at the time.
    pub false_down_causes: FalseDownCauses,
    /// Datagrams sent per live node per virtual second.
    pub datagrams_per_node_s: f64,
    /// Bytes sent per live node per virtual second (sealed datagrams).
    pub bytes_per_node_s: f64,
    /// Of those, datagrams of the full-state sync exchange per node per second.
    pub sync_datagrams_per_node_s: f64,
    /// Of those, bytes of the full-state sync exchange per node per second.
    pub sync_bytes_per_node_s: f64,
    /// The rest: SWIM gossip bytes (probes, acks, announces, piggybacked
    /// updates, notices) per node per second (`bytes - sync bytes`).
    pub gossip_bytes_per_node_s: f64,
    /// Records and tombstones the nodes received in sync `Members` messages.
    pub sync_records_received: u64,
    /// Of those, records equal to the one the receiver held: not handed to
    /// foca.
    pub sync_records_unchanged: u64,
    /// Whether full-state sync was on (`--no-sync` turns it off).
    pub sync: bool,
    /// Whether "port unreachable" answers counted as evidence
    /// (`--no-network-evidence` turns it off).
    pub network_evidence: bool,
    /// Whether Lifeguard ran (`--no-lifeguard` turns it off).
    pub lifeguard: bool,
    /// Probes that failed over the run: suspicions raised, true or false.
    pub probes_failed: u64,
    /// `Config::autoclean` in seconds (null: never).
    pub autoclean_s: Option<f64>,
    /// Force-left nodes that some node reported `MemberUp` for at the
    /// force-left generation (any renewal of it) after the force-leave.
    pub resurrections: usize,
    /// The `MemberUp` events behind `resurrections`.
    pub resurrection_events: u64,
    /// The largest `membership().count()` (down records included) any node
    /// held during the run, checked every sampling period.
    pub max_view_size: u32,
    /// The largest `membership().count()` a live node holds at the end.
    pub view_size_at_end: u32,
    /// Records live nodes hold at the end of nodes that are not live
    /// (crashed for good, or force-left): 0 once autoclean forgot them.
    pub records_of_gone_at_end: u64,
    /// Worst time from a crash (of a node still down) until the last node
    /// forgot it (`NodeCleaned`); null unless every live node forgot every
    /// such node by the end.
    pub forgotten_s: Option<f64>,
    /// At the last heal: records live nodes held of nodes on other sides
    /// (0 when the partition outlasted autoclean); null without a partition.
    pub records_across_at_heal: Option<u64>,
    /// Virtual seconds simulated (formation included).
    pub virtual_s: f64,
    /// Wall-clock seconds the run took (measured, never used to decide anything).
    pub wall_s: f64,
    /// Simulated node-seconds per wall-clock second.
    pub node_seconds_per_wall_s: f64,
    /// Peak resident memory of the process (VmHWM), MiB; null where unknown.
    pub peak_rss_mib: Option<f64>,
    /// Inputs the nodes handled (timeouts and datagrams).
    pub steps: u64,
    /// Entries in the event log.
    pub events: u64,
    /// The event log's hash (FNV-1a, hex): equal for equal seeds, whatever
    /// the thread count.
    pub event_log_hash: String,
    /// Threads that handled the nodes of each window (`--threads`).
    pub threads: usize,
    /// Wakeups (datagrams, timers, discovery answers) handled per window,
    /// on average: how much a window offers to run in parallel.
    pub events_per_window: f64,
    /// On one thread: the lowest wall time 2, 4, 8, 16 and 64 threads
    /// could take against this run's, each window's node work split
    /// longest node first with free hand-offs ([`crate::parallel::Spread`]),
    /// as `[threads, ratio]` pairs. Empty with more than one thread.
    pub thread_bounds: Vec<(usize, f64)>,
    /// On one thread: the same two-thread bound with the nodes of each
    /// window taken in the crew's order (costliest first by its guess)
    /// instead of by their measured times, what the guess costs. `None`
    /// with more than one thread.
    pub guessed_bound: Option<f64>,
    /// On one thread: the wall time spent in the nodes' own work, in
    /// seconds (the rest is the queue, the merge and the measurements).
    /// `None` with more than one thread.
    pub node_work_s: Option<f64>,
    /// The operations of the timeline (node starts left out) and their convergence times.
    pub timeline: Vec<Mark>,
    /// Every partition: when every side saw the others stopped, when it was
    /// healed, and when every live node listed every live node again.
    pub partitions: Vec<PartitionRecord>,
    /// What the network did.
    pub network: NetStats,
    /// Datagrams the nodes dropped on receipt (seal, size, decoding).
    pub datagrams_dropped: u64,
    /// Views the once-per-sample audit found out of step with the node's
    /// own count and re-read (view changes the node reported no event for).
    pub views_audited: u64,
    /// The first view the audit corrected: (node, virtual seconds).
    pub first_view_audit: Option<(u32, f64)>,
    /// The command that reproduces this run.
    pub reproduce: String,
}

/// Peak resident set size of this process in MiB (`VmHWM` in /proc/self/status).
pub fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

impl RunReport {
    /// Why the measurements cannot be trusted, if they cannot: a view the
    /// audit had to re-read is a view change no event reported, repaired
    /// inside the numbers that depend on it.
    pub fn audit_failure(&self) -> Option<String> {
        if self.views_audited == 0 {
            return None;
        }
        let first = match self.first_view_audit {
            Some((node, at)) => format!(", the first of node n{node} at {at:.3} s"),
            None => String::new(),
        };
        Some(format!(
            "{} views changed without an event and were re-read by the audit{first}",
            self.views_audited
        ))
    }

    /// The timeline in words: for each operation, its time (virtual
    /// seconds), what it was, and what came of it: for a partition, when
    /// every side saw the others stopped; for its heal, when the cluster
    /// agreed again; for anything else, when every live view was correct
    /// again.
    pub fn timeline_outcomes(&self) -> Vec<(f64, &str, String)> {
        self.timeline
            .iter()
            .map(|m| (m.at_s, m.what.as_str(), self.outcome(m)))
            .collect()
    }

    fn outcome(&self, m: &Mark) -> String {
        let missing = || match &m.cut_short_by {
            Some(by) => format!("before the {by}"),
            None => "within the run".to_owned(),
        };
        if let Some(p) = self
            .partitions
            .iter()
            .find(|p| p.at_s == m.at_s && p.what == m.what)
        {
            let others = if p.sides == 2 {
                "the other side"
            } else {
                "the other sides"
            };
            let how_far = match p.seen_stopped_at_heal {
                Some(f) if p.sides_apart_after_s.is_none() => format!(
                    " (at the heal the nodes saw {:.1}% of {others} stopped)",
                    f * 100.0
                ),
                _ => String::new(),
            };
            return match m.converged_after_s {
                Some(x) => format!("every side sees {others} stopped after {x:.3} s"),
                None => format!("not every side saw {others} stopped {}{how_far}", missing()),
            };
        }
        let heals_partition = self
            .partitions
            .iter()
            .any(|p| p.healed_at_s == Some(m.at_s));
        match m.converged_after_s {
            Some(y) if heals_partition => format!("agreed again after {y:.3} s"),
            None if heals_partition => format!("not agreed again {}", missing()),
            Some(x) => format!("views correct after {x:.3} s"),
            None => format!("views not all correct {}", missing()),
        }
    }
}

fn opt(v: Option<f64>) -> String {
    v.map_or_else(|| "never".to_owned(), |s| format!("{s:.3} s"))
}

/// Detection of the crashes of one cause.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CauseDetection {
    /// What crashed.
    pub cause: CrashCause,
    /// How many such crashes were detected (not restarted first).
    pub crashes: usize,
    /// Worst time until the first live node marked one down.
    pub first_s: Option<f64>,
    /// Worst time until no live node held one any more.
    pub all_s: Option<f64>,
}

impl fmt::Display for RunReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "rollcall-sim: {} nodes, scenario {}, profile {}, seed {}",
            self.nodes, self.scenario, self.profile, self.seed
        )?;
        if self.formation_s > 0.0 {
            writeln!(
                f,
                "  formation     {} after {:.3} s",
                if self.formed {
                    "complete"
                } else {
                    "INCOMPLETE"
                },
                self.formation_s
            )?;
        }
        for (at, what, outcome) in self.timeline_outcomes() {
            writeln!(f, "  {at:>9.3} s   {what}: {outcome}")?;
        }
        writeln!(
            f,
            "  converged     {} ({:.1}% of {} live views correct at the end; slowest node knows {} members)",
            match self.convergence_s {
                Some(s) if self.converged => format!("yes, {s:.3} s after the last operation"),
                _ => "NO".to_owned(),
            },
            self.converged_fraction * 100.0,
            self.live_nodes,
            self.slowest_node_members
        )?;
        for d in &self.detection_by_cause {
            writeln!(
                f,
                "  detection     {} crash: first node {}, all nodes {} (worst of {}; network evidence {})",
                match d.cause {
                    CrashCause::Process => "process",
                    CrashCause::Host => "host",
                },
                opt(d.first_s),
                opt(d.all_s),
                d.crashes,
                if self.network_evidence { "on" } else { "off" },
            )?;
        }
        let c = &self.false_down_causes;
        writeln!(
            f,
            "  false downs   {} identities ({} events: {} of a slow member, {} by a slow node, {} just after a heal, {} other); {} probes failed (Lifeguard {})",
            self.false_positives,
            self.false_down_events,
            c.slow_member,
            c.slow_observer,
            c.after_heal,
            c.other,
            self.probes_failed,
            if self.lifeguard { "on" } else { "off" }
        )?;
        if self.resurrections > 0 {
            writeln!(
                f,
                "  RESURRECTED   {} force-left nodes reported up again ({} events)",
                self.resurrections, self.resurrection_events
            )?;
        }
        writeln!(
            f,
            "  view size     at most {} records on one node (at the end {}); records of gone nodes at the end {}{}{}",
            self.max_view_size,
            self.view_size_at_end,
            self.records_of_gone_at_end,
            self.forgotten_s
                .map_or_else(String::new, |s| format!("; forgotten everywhere {s:.1} s after the crash")),
            self.records_across_at_heal
                .map_or_else(String::new, |c| format!("; records across the partition at heal {c}")),
        )?;
        writeln!(
            f,
            "  traffic       {:.1} datagrams/node/s, {:.0} bytes/node/s; network lost {}, cut {}, duplicated {}",
            self.datagrams_per_node_s,
            self.bytes_per_node_s,
            self.network.lost,
            self.network.partitioned,
            self.network.duplicated
        )?;
        writeln!(
            f,
            "  sync bytes vs gossip bytes  {:.0} vs {:.0} bytes/node/s (sync {}; {:.2} sync datagrams/node/s)",
            self.sync_bytes_per_node_s,
            self.gossip_bytes_per_node_s,
            if self.sync { "on" } else { "off" },
            self.sync_datagrams_per_node_s,
        )?;
        writeln!(
            f,
            "  speed         {:.1} virtual s in {:.2} wall s ({:.0} node-s per wall s), peak RSS {}",
            self.virtual_s,
            self.wall_s,
            self.node_seconds_per_wall_s,
            self.peak_rss_mib
                .map_or_else(|| "unknown".to_owned(), |m| format!("{m:.0} MiB"))
        )?;
        writeln!(
            f,
            "  event log     {} entries, hash {}",
            self.events, self.event_log_hash
        )?;
        write!(
            f,
            "  threads       {} ({:.1} wakeups per window",
            self.threads, self.events_per_window
        )?;
        if self.thread_bounds.is_empty() {
            writeln!(f, ")")?;
        } else {
            let bounds: Vec<String> = self
                .thread_bounds
                .iter()
                .map(|(t, b)| match self.guessed_bound {
                    Some(g) if *t == 2 => format!("{b:.2}x on {t} ({g:.2}x in the crew's order)"),
                    _ => format!("{b:.2}x on {t}"),
                })
                .collect();
            writeln!(f, "; at best {} threads)", bounds.join(", "))?;
        }
        write!(f, "  reproduce     {}", self.reproduce)
    }
}
