//! A conservative, window-based parallel event loop that stays
//! deterministic.
//!
//! A datagram sent at `t` arrives no earlier than `t + L`, where `L` is the
//! network's shortest link latency ([`Network::min_latency`]: the profile's
//! latency times the low end of its spread; jitter and a slow receiver only
//! add). "Port unreachable" answers take a link latency too. So within a
//! window `[t0, t0 + L)`, starting at the earliest queued wakeup `t0`,
//! nothing one node does reaches another node: each node's wakeups of the
//! window, and the wakeups it schedules for itself inside the window (timer
//! deadlines, the discovery answer that static discovery gives at once),
//! depend only on that node. The world hands each node its wakeups of the
//! window (`run_window`); the nodes run on a [`Crew`]'s threads, each in its own
//! (time, sequence) order, and the world then merges what they produced in
//! one fixed order, (time, node, order of production), before the next
//! window. Every random decision of the network draws from the sending
//! node's own stream ([`Network::route`]), so no decision depends on which
//! thread ran first: the event log is the same for every thread count, and
//! equal to one thread's.
//!
//! `World::run_until` lengthens windows into rounds: each link has its own
//! latency (the LAN's spread from 0.125 to 0.375 ms), so a round takes
//! wakeups past the shortest latency while no other node of the round can
//! reach the wakeup's node by then, and gives each node its own horizon
//! (`Horizon::Round`); a round never reaches twice the shortest latency
//! past its start, the quickest a datagram goes there and back. Rounds
//! hold about a third more wakeups than windows on the join storms (6.3
//! against 4.7 at 2,000 nodes, 11.1 against 8.5 at 3,000), and the event
//! log is the same. Events are applied once no wakeup before them is left.
//!
//! A LAN's window (0.125 ms) holds a few wakeups of tens of microseconds
//! each, so a window is shared out as soon as two nodes have work in it
//! ([`MIN_PARALLEL`]): the [`Crew`]'s helpers are spinning and take a share
//! within a microsecond. A window of one node's wakeups runs on the
//! calling thread, with the very same code.
//!
//! [`Network::min_latency`]: crate::network::Network::min_latency
//! [`Network::route`]: crate::network::Network::route

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Duration;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use rollcall::core::Time;

use crate::crew::Crew;

use crate::network::{LinkTimings, Network};
use crate::rng::SimRng;
use crate::world::{step, Item, Outbox, Shared, Slot, Work};

/// Windows with fewer wakeups than this run on the calling thread
/// (`run --min-parallel`). Two: with the crew's hand-off a window of two
/// nodes' wakeups already gains.
pub const MIN_PARALLEL: usize = 2;

/// The most wakeups one node handles in one window. A node that keeps
/// waking itself within the window past this has the rest queued for the
/// next window (in a fixed order, so runs stay deterministic).
pub const MAX_NODE_STEPS: usize = 1 << 20;

/// The window length for links with these timings: their shortest latency,
/// at least 1 ns (with zero-latency links a window is one instant, and
/// what a node sends within it waits for the next window).
pub fn span(links: LinkTimings) -> Duration {
    links
        .latency
        .mul_f64(links.spread.0.max(0.0))
        .max(Duration::from_nanos(1))
}

/// The thread counts a one-thread run's [`Spread`] is worked out for.
pub const BOUND_THREADS: [usize; 5] = [2, 4, 8, 16, 64];

/// How a one-thread run's node work would spread over more threads: what
/// the report gives so a user can tell, before adding threads or cores,
/// how much they can gain.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Spread {
    /// Wall time spent in the nodes' wakeups, in nanoseconds.
    pub node_ns: u64,
    /// That work's wall time on each count of [`BOUND_THREADS`] threads
    /// that share every window the best way they can without knowing the
    /// future (longest node first, to the least loaded thread) and hand
    /// off for free, in nanoseconds.
    pub split_ns: [u64; BOUND_THREADS.len()],
    /// The same on two threads that take the nodes in a crew's order
    /// (costliest first by the guess, `cost`) instead of by their measured
    /// times: what the guess costs.
    pub guessed_ns: u64,
}

impl Spread {
    /// Adds one window whose nodes were guessed to cost `.0` and took
    /// `.1` nanoseconds each.
    fn add(&mut self, jobs: &mut [(u64, u64)]) {
        jobs.sort_by_key(|j| Reverse(j.0));
        self.guessed_ns += makespan(jobs.iter().map(|j| j.1), 2);
        jobs.sort_by_key(|j| Reverse(j.1));
        self.node_ns += jobs.iter().map(|j| j.1).sum::<u64>();
        for (k, &threads) in BOUND_THREADS.iter().enumerate() {
            self.split_ns[k] += makespan(jobs.iter().map(|j| j.1), threads);
        }
    }

    /// The lowest wall time `threads` threads (one of [`BOUND_THREADS`])
    /// could take against one, for a run of `wall_s` seconds on one
    /// thread: the work outside the nodes stays as it is, the nodes' work
    /// shrinks to its split.
    pub fn bound(&self, threads: usize, wall_s: f64) -> Option<f64> {
        let k = BOUND_THREADS.iter().position(|&t| t == threads)?;
        self.ratio(self.split_ns[k], wall_s)
    }

    /// [`bound`](Self::bound) on two threads that take the nodes in the
    /// crew's order.
    pub fn guessed_bound(&self, wall_s: f64) -> Option<f64> {
        self.ratio(self.guessed_ns, wall_s)
    }

    /// The nodes' work in seconds, if any was timed.
    pub fn node_seconds(&self) -> Option<f64> {
        (self.node_ns > 0).then(|| self.node_ns as f64 / 1e9)
    }

    fn ratio(&self, split_ns: u64, wall_s: f64) -> Option<f64> {
        let node_s = self.node_ns as f64 / 1e9;
        (wall_s > 0.0 && self.node_ns > 0)
            .then(|| ((wall_s - node_s).max(0.0) + split_ns as f64 / 1e9) / wall_s)
    }
}

/// The wall time of jobs of these `costs`, taken in this order by
/// `threads` threads, each job to the thread that is free first.
fn makespan(costs: impl ExactSizeIterator<Item = u64>, threads: usize) -> u64 {
    let threads = threads.clamp(1, 64);
    if costs.len() <= threads {
        // A thread each: the longest job is the window's time.
        return costs.max().unwrap_or(0);
    }
    let mut load = [0u64; 64];
    let load = &mut load[..threads];
    for c in costs {
        if let Some(least) = load.iter_mut().min() {
            *least += c;
        }
    }
    load.iter().copied().max().unwrap_or(0)
}

/// A round takes wakeups past its first one plus the shortest latency
/// only while it holds at most this many nodes: each such wakeup is
/// checked against every node of the round, and so is each node's
/// horizon. A round with more nodes offers enough to share anyway, and is
/// handled as a plain window.
pub const ROUND_NODES: usize = 32;

/// How far each node of a window may go: every node to one instant (a
/// window as long as the shortest latency), or each node to its own
/// horizon in a round (see `World::window`).
#[derive(Clone, Copy, Debug)]
pub(crate) enum Horizon<'a> {
    /// Every node handles what it schedules for itself before this instant.
    Until(Time),
    /// Node `k` handles what it schedules for itself before the earliest
    /// instant a datagram of another node of the round can reach it (`s_j`
    /// plus the `j -> k` link latency, for each `(j, s_j)` of `firsts`),
    /// and before `rest`, the first wakeup left in the queue.
    Round {
        /// Each node of the round with its first wakeup in it, in time order.
        firsts: &'a [(u32, Time)],
        /// The first wakeup the round did not take (or its cap).
        rest: Time,
        /// The network's shortest latency.
        span: Duration,
    },
}

impl Horizon<'_> {
    /// Node `k`'s horizon on `net`.
    fn of(&self, k: u32, net: &Network) -> Time {
        match *self {
            Self::Until(end) => end,
            Self::Round { firsts, rest, span } => {
                let mut horizon = rest;
                // `firsts` is in time order: once a node's first wakeup
                // plus the shortest latency is past the horizon found, so
                // is every later one's.
                for &(j, s) in firsts {
                    if s + span >= horizon {
                        break;
                    }
                    if j != k {
                        horizon = horizon.min(s + net.link_latency(j, k));
                    }
                }
                horizon
            }
        }
    }
}

/// A crew of `threads` threads, or none for one thread.
pub fn crew(threads: usize) -> Option<Crew> {
    (threads > 1).then(|| Crew::new(threads))
}

/// Handles one window's wakeups (`items`, each before its node's
/// `horizon`, popped in (time, sequence) order), node by node: shared out among `crew`'s
/// threads if one is given and more than one node has work, on the
/// calling thread otherwise (the world gives no crew for a window of fewer
/// than its `min_parallel` wakeups); returns each node's outbox, in node
/// order. `seq` is the world's last sequence number: wakeups a node
/// schedules for itself inside the window come after every queued one of
/// the same instant. With `spread` (a one-thread run), each node's work
/// is timed and added to it.
#[allow(clippy::too_many_arguments)]
pub(crate) fn run_window(
    crew: Option<&Crew>,
    spread: Option<&mut Spread>,
    slots: &mut [Slot],
    rngs: &mut [SimRng],
    shared: &Shared<'_>,
    mut items: Vec<Item>,
    horizon: Horizon<'_>,
    seq: u64,
) -> Vec<(u32, Outbox)> {
    // Stable: each node's wakeups stay in (time, sequence) order.
    items.sort_by_key(|it| it.work.target());
    let mut groups: Vec<(u32, Vec<Item>)> = Vec::new();
    for item in items {
        let to = item.work.target();
        match groups.last_mut() {
            Some((i, g)) if *i == to => g.push(item),
            _ => groups.push((to, vec![item])),
        }
    }
    let nodes: Vec<u32> = groups.iter().map(|(i, _)| *i).collect();
    let jobs: Vec<_> = groups
        .into_iter()
        .zip(pick(slots, &nodes))
        .zip(pick(rngs, &nodes))
        .map(|(((i, items), slot), rng)| (i, items, slot, rng))
        .collect();
    let run = |(i, items, slot, rng): (u32, Vec<Item>, &mut Slot, &mut SimRng)| {
        let end = horizon.of(i, shared.net);
        (i, run_node(i, slot, rng, shared, items, end, seq))
    };
    match crew {
        Some(crew) if jobs.len() > 1 && crew.threads() > 1 => {
            // The costliest nodes first: a thread that takes a long share
            // early leaves the short ones to the others.
            let mut order: Vec<usize> = (0..jobs.len()).collect();
            order.sort_by_key(|&k| Reverse(cost(&jobs[k].1, jobs[k].2)));
            let n = jobs.len();
            let jobs: Vec<Mutex<Option<_>>> =
                jobs.into_iter().map(|j| Mutex::new(Some(j))).collect();
            let outs: Vec<Mutex<Option<(u32, Outbox)>>> =
                (0..n).map(|_| Mutex::new(None)).collect();
            let next = AtomicUsize::new(0);
            crew.broadcast(&|| {
                while let Some(&k) = order.get(next.fetch_add(1, Ordering::Relaxed)) {
                    // Each index is taken once, so neither lock is ever contended.
                    let job = jobs[k].lock().unwrap_or_else(|e| e.into_inner()).take();
                    if let Some(job) = job {
                        *outs[k].lock().unwrap_or_else(|e| e.into_inner()) = Some(run(job));
                    }
                }
            });
            outs.into_iter()
                .filter_map(|o| o.into_inner().unwrap_or_else(|e| e.into_inner()))
                .collect()
        }
        _ => match spread {
            Some(spread) => {
                let mut costs = Vec::with_capacity(jobs.len());
                let outs = jobs
                    .into_iter()
                    .map(|job| {
                        let guess = cost(&job.1, job.2);
                        let started = std::time::Instant::now();
                        let out = run(job);
                        costs.push((guess, started.elapsed().as_nanos() as u64));
                        out
                    })
                    .collect();
                spread.add(&mut costs);
                outs
            }
            None => jobs.into_iter().map(run).collect(),
        },
    }
}

/// What a node's wakeups are likely to cost, in units of one datagram
/// byte applied to one record: only the order in which a crew takes the
/// nodes of a window depends on it (the costliest first), never a result.
/// A datagram's updates are decoded and applied one by one, each a scan of
/// the receiver's records, so its length times the records the node holds
/// stands for its cost. A timer the node is armed for sometimes does work
/// over the whole view (a probe round, gossip, a sync digest: a quarter of
/// them on the 3,000-node join storm, about 300 µs each, the rest a few
/// µs), and counts as a datagram of [`DUE_TIMER_BYTES`]; a stale timer
/// entry, or any other wakeup, as a short datagram.
fn cost(items: &[Item], slot: &Slot) -> u64 {
    let records = slot.node.as_ref().map_or(0, |n| n.num_records()) as u64;
    let bytes: u64 = items
        .iter()
        .map(|it| match &it.work {
            Work::Deliver { payload, .. } => payload.len() as u64 + 64,
            Work::Timer(_) if slot.armed == Some(it.at) => DUE_TIMER_BYTES,
            _ => 64,
        })
        .sum();
    bytes * (records + 64)
}

/// What a due timer counts as in [`cost`], in datagram bytes: on the
/// 3,000-node join storm, two threads taking the nodes in this order would
/// take about 2% longer than in the order of their measured times (the
/// best possible), against 7% with due timers counted as short datagrams.
const DUE_TIMER_BYTES: u64 = 6000;

/// Node `i` handles its wakeups of the window, and those it schedules for
/// itself before `end`, in (time, sequence) order.
fn run_node(
    i: u32,
    slot: &mut Slot,
    rng: &mut SimRng,
    shared: &Shared<'_>,
    items: Vec<Item>,
    end: Time,
    mut seq: u64,
) -> Outbox {
    let mut heap: BinaryHeap<Reverse<Item>> = items.into_iter().map(Reverse).collect();
    let mut out = Outbox::default();
    for _ in 0..MAX_NODE_STEPS {
        let Some(Reverse(item)) = heap.pop() else {
            break;
        };
        let first = out.sends.len();
        step(i, slot, rng, shared, item, &mut out);
        // Wakeups for this node inside the window are handled now.
        let mut k = first;
        while k < out.sends.len() {
            let (_, it) = &out.sends[k];
            if it.work.target() == i && it.at < end {
                let (_, mut it) = out.sends.remove(k);
                seq += 1;
                it.seq = seq;
                heap.push(Reverse(it));
            } else {
                k += 1;
            }
        }
    }
    let last = out.last;
    for Reverse(it) in heap.into_sorted_vec().into_iter().rev() {
        out.sends.push((last, it));
    }
    out
}

/// Disjoint mutable references to `slice[i]` for each `i` of `ascending`
/// (strictly increasing, each within the slice).
fn pick<'a, T>(slice: &'a mut [T], ascending: &[u32]) -> Vec<&'a mut T> {
    let mut out = Vec::with_capacity(ascending.len());
    let mut rest = slice;
    let mut base = 0usize;
    for &i in ascending {
        let i = i as usize;
        let tail = std::mem::take(&mut rest);
        let Some(tail) = tail.get_mut(i - base..) else {
            break;
        };
        let Some((one, tail)) = tail.split_first_mut() else {
            break;
        };
        out.push(one);
        rest = tail;
        base = i + 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pick_hands_out_each_chosen_element_once() {
        let mut v: Vec<u32> = (0..10).collect();
        let got: Vec<u32> = pick(&mut v, &[0, 3, 4, 9])
            .into_iter()
            .map(|x| *x)
            .collect();
        assert_eq!(got, vec![0, 3, 4, 9]);
        for x in pick(&mut v, &[2, 5]) {
            *x += 100;
        }
        assert_eq!(v[2], 102);
        assert_eq!(v[5], 105);
    }

    #[test]
    fn thread_bounds_split_each_window_longest_first() {
        let mut s = Spread::default();
        // 5, 4, 3, 3, 3 on two threads: 5 | 4 -> 5 | 7 -> 8 | 7 -> 8 | 10.
        // Guessed the other way round: 3 | 3 -> 6 | 3 -> 6 | 7 -> 11 | 7.
        s.add(&mut [(3, 3), (1, 5), (4, 3), (2, 4), (5, 3)]);
        assert_eq!(s.node_ns, 18);
        // On four: 5 | 4 | 3 | 3, then the last 3 onto a 3: 6.
        assert_eq!(s.split_ns, [10, 6, 5, 5, 5]);
        assert_eq!(s.guessed_ns, 11);
        // One node: nothing to share.
        s.add(&mut [(0, 6)]);
        assert_eq!(s.split_ns, [16, 12, 11, 11, 11]);
        assert_eq!(s.guessed_ns, 17);
        // 24 s of node work in a 30 s run: (6 + 16) / 30 on two threads.
        let b = Spread {
            node_ns: 24_000_000_000,
            split_ns: [16_000_000_000; 5],
            guessed_ns: 18_000_000_000,
        };
        assert!((b.bound(2, 30.0).unwrap() - 22.0 / 30.0).abs() < 1e-12);
        assert!((b.guessed_bound(30.0).unwrap() - 24.0 / 30.0).abs() < 1e-12);
        assert_eq!(b.node_seconds(), Some(24.0));
        assert_eq!(Spread::default().node_seconds(), None);
        assert_eq!(Spread::default().bound(2, 30.0), None);
        assert_eq!(s.bound(3, 30.0), None);
    }

    #[test]
    fn a_nodes_horizon_in_a_round_is_the_first_datagram_another_node_could_send_it() {
        let lan = crate::network::NetProfile::Lan.links();
        let net = Network::new(7, 4, lan);
        let t = |us: u64| Time::ZERO + Duration::from_micros(us);
        let firsts = [(0, t(100)), (2, t(150)), (3, t(170))];
        let far = t(10_000);
        let span = Duration::from_micros(125);
        let round = Horizon::Round {
            firsts: &firsts,
            rest: far,
            span,
        };
        // Node 0 hears first from node 2 or 3, never from itself.
        let from = |j: u32, s: Time, k: u32| s + net.link_latency(j, k);
        assert_eq!(
            round.of(0, &net),
            from(2, t(150), 0).min(from(3, t(170), 0))
        );
        // A node with no wakeup in the round (1) hears from all three.
        assert_eq!(
            round.of(1, &net),
            from(0, t(100), 1)
                .min(from(2, t(150), 1))
                .min(from(3, t(170), 1))
        );
        // The first wakeup left bounds every node.
        let near = Horizon::Round {
            firsts: &firsts,
            rest: t(120),
            span,
        };
        assert_eq!(near.of(0, &net), t(120));
        assert_eq!(Horizon::Until(t(5)).of(0, &net), t(5));
    }

    #[test]
    fn a_window_is_the_shortest_link_latency_and_never_empty() {
        let lan = crate::network::NetProfile::Lan.links();
        assert_eq!(span(lan), Duration::from_micros(125));
        assert_eq!(
            span(LinkTimings::fixed(Duration::ZERO)),
            Duration::from_nanos(1)
        );
    }
}
