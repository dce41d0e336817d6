//! The audit: what the nodes hold, read from the nodes themselves.
//!
//! [`Measure`] follows every view through the nodes' events alone. The audit
//! reads the nodes' own state instead, so that the measurements never rest on
//! the events without a check:
//!
//! - once per sampling period it compares each running node's member count
//!   with the view its events built, and re-reads a view that differs. Each
//!   re-read is a view change the node reported no event for, an event bug
//!   repaired inside the numbers: the report counts them (`views_audited`)
//!   and the seeds and sweep checks fail on any;
//! - it counts member records (`Node::membership()`, down ones included):
//!   the largest view any node held, the records live nodes hold of nodes
//!   that are gone, and the records across a partition when it is lifted.

use std::time::Duration;

use rollcall::core::{Node, Time};

use crate::eventlog::EventLog;
use crate::measure::Measure;
use crate::network::Network;
use crate::world::{index_of, World};

/// The audit's schedule and findings over one run.
#[derive(Debug)]
pub struct Audit {
    /// How many nodes the world holds.
    n: u32,
    period: Duration,
    next: Time,
    corrected: u64,
    first: Option<(u32, Time)>,
    max_view_size: u32,
    records_across_at_heal: Option<u64>,
}

/// Whether every running node's active members (`Node::members`, read
/// from the node, not from its events) are exactly the other running nodes.
/// O(N²): for tests and examples.
pub fn views_agree(world: &World) -> bool {
    let running: Vec<u32> = world.running().collect();
    world.nodes().all(|(i, node)| {
        let mut seen: Vec<u32> = node
            .members()
            .filter_map(|id| index_of(id.addr(), world.len()))
            .collect();
        seen.sort_unstable();
        seen.len() + 1 == running.len()
            && seen
                .iter()
                .all(|&m| m != i && running.binary_search(&m).is_ok())
    })
}

/// Replaces node `i`'s tracked view by the members `node` holds now.
pub(crate) fn reread(now: Time, i: u32, node: &Node, n: u32, measure: &mut Measure) {
    let members: Vec<u32> = node
        .members()
        .filter_map(|id| index_of(id.addr(), n))
        .collect();
    measure.resync(now, i, &members);
}

impl Audit {
    /// The audit of a world of `n` nodes, run once per `period`.
    pub fn new(n: u32, period: Duration) -> Self {
        Self {
            n,
            period,
            next: Time::ZERO,
            corrected: 0,
            first: None,
            max_view_size: 0,
            records_across_at_heal: None,
        }
    }

    /// Whether an audit is due before the wakeup at `at` is handled; if so,
    /// the next one is due a period after `at`.
    pub(crate) fn due(&mut self, at: Time) -> bool {
        if at >= self.next {
            self.next = at + self.period;
            true
        } else {
            false
        }
    }

    /// When the next audit is due.
    pub(crate) fn next_due(&self) -> Time {
        self.next
    }

    /// Checks every running node's member count against the view `measure`
    /// tracks for it, and re-reads the views that differ (logging each).
    /// Notes the largest record count on the way. O(N).
    pub(crate) fn run<'a>(
        &mut self,
        now: Time,
        nodes: impl Iterator<Item = (u32, &'a Node)>,
        measure: &mut Measure,
        log: &mut EventLog,
    ) {
        for (i, node) in nodes {
            let size = node.num_records() as u32;
            let (real, awaited) = (node.num_members() as u32, node.awaited_side_mates());
            self.max_view_size = self.max_view_size.max(size);
            if awaited > 0 {
                // By contract the events count former side-mates the node
                // does not hold yet: nothing to compare until they are back.
                continue;
            }
            let tracked = measure.tracked_members(i);
            if real != tracked {
                self.corrected += 1;
                self.first.get_or_insert((i, now));
                let what =
                    format!("audit: view re-read (node holds {real}, events said {tracked})");
                log.record_other(now, i, &what);
                reread(now, i, node, self.n, measure);
            }
        }
    }

    /// Views the audit had to correct (should stay 0: each one is a view
    /// change the node reported no event for).
    pub fn corrected(&self) -> u64 {
        self.corrected
    }

    /// The node and time of the first view the audit corrected, if any.
    pub fn first(&self) -> Option<(u32, Time)> {
        self.first
    }

    /// The largest number of member records (down ones included) any
    /// running node held: at each audit, and now among `nodes` (the running
    /// ones).
    pub fn max_view_size<'a>(&self, nodes: impl Iterator<Item = (u32, &'a Node)>) -> u32 {
        let now = nodes
            .map(|(_, n)| n.num_records() as u32)
            .max()
            .unwrap_or(0);
        self.max_view_size.max(now)
    }

    /// The largest number of member records a live node among `nodes` holds now.
    pub fn view_size_now<'a>(
        &self,
        nodes: impl Iterator<Item = (u32, &'a Node)>,
        measure: &Measure,
    ) -> u32 {
        nodes
            .filter(|&(i, _)| measure.is_live(i))
            .map(|(_, n)| n.num_records() as u32)
            .max()
            .unwrap_or(0)
    }

    /// How many records live nodes among `nodes` hold of nodes that are not
    /// live (crashed and not restarted, or force-left): zero once autoclean
    /// forgot them all.
    pub fn records_of_gone<'a>(
        &self,
        nodes: impl Iterator<Item = (u32, &'a Node)>,
        measure: &Measure,
    ) -> u64 {
        let mut count = 0;
        for (_, node) in nodes.filter(|&(i, _)| measure.is_live(i)) {
            count += node
                .membership()
                .filter_map(|m| index_of(m.id().addr(), self.n))
                .filter(|&m| !measure.is_live(m))
                .count() as u64;
        }
        count
    }

    /// A partition is about to be lifted: counts the records live nodes
    /// among `nodes` hold of nodes `net`'s partition separates them from.
    pub(crate) fn before_heal<'a>(
        &mut self,
        nodes: impl Iterator<Item = (u32, &'a Node)>,
        measure: &Measure,
        net: &Network,
    ) {
        let mut count = 0;
        for (i, node) in nodes.filter(|&(i, _)| measure.is_live(i)) {
            count += node
                .membership()
                .filter_map(|m| index_of(m.id().addr(), self.n))
                .filter(|&m| net.separated(i, m))
                .count() as u64;
        }
        self.records_across_at_heal = Some(count);
    }

    /// At the last heal: how many records live nodes held of nodes on other
    /// sides (0 when the partition outlasted autoclean and both sides forgot).
    pub fn records_across_at_heal(&self) -> Option<u64> {
        self.records_across_at_heal
    }
}
