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
//! window (`run_window`); the nodes run on a thread pool, each in its own
//! (time, sequence) order, and the world then merges what they produced in
//! one fixed order, (time, node, order of production), before the next
//! window. Every random decision of the network draws from the sending
//! node's own stream ([`Network::route`]), so no decision depends on which
//! thread ran first: the event log is the same for every thread count, and
//! equal to one thread's.
//!
//! Windows with few wakeups (a LAN's shortest latency is 0.125 ms) are not
//! worth handing to other threads: below [`MIN_PARALLEL`] wakeups the
//! calling thread handles the window itself, with the very same code.
//!
//! [`Network::min_latency`]: crate::network::Network::min_latency
//! [`Network::route`]: crate::network::Network::route

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Duration;

use rayon::prelude::*;
use rayon::ThreadPool;
use rollcall::core::Time;

use crate::network::LinkTimings;
use crate::rng::SimRng;
use crate::world::{step, Item, Outbox, Shared, Slot};

/// Windows with fewer wakeups than this run on the calling thread: handing
/// them to the pool costs more than it saves.
pub const MIN_PARALLEL: usize = 48;

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

/// A pool of `threads` threads, or none for one thread (or if the pool
/// cannot be built: the run is the same, on the calling thread).
pub fn pool(threads: usize) -> Option<ThreadPool> {
    if threads <= 1 {
        return None;
    }
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("rollcall-sim-{i}"))
        .build()
        .ok()
}

/// Handles one window's wakeups (`items`, all before `end`, popped in
/// (time, sequence) order), node by node: in parallel if `pool` is given
/// (`Some(None)`: the caller runs on the pool's threads already;
/// `Some(Some(pool))`: on `pool`) and more than one node has work, on the
/// calling thread otherwise (the world gives no pool for a window of fewer
/// than its `min_parallel` wakeups); returns each node's outbox, in node order. `seq` is the
/// world's last sequence number: wakeups a node schedules for itself
/// inside the window come after every queued one of the same instant.
pub(crate) fn run_window(
    pool: Option<Option<&ThreadPool>>,
    slots: &mut [Slot],
    rngs: &mut [SimRng],
    shared: &Shared<'_>,
    mut items: Vec<Item>,
    end: Time,
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
        (i, run_node(i, slot, rng, shared, items, end, seq))
    };
    match pool {
        // Called on one of the pool's threads (the world's loop runs there).
        Some(None) if jobs.len() > 1 => split(jobs).map(run).collect(),
        Some(Some(pool)) if jobs.len() > 1 => pool.install(|| split(jobs).map(run).collect()),
        _ => jobs.into_iter().map(run).collect(),
    }
}

/// `jobs` as a parallel iterator split into at most one part per thread
/// of the current pool: a window's few nodes cost one split per thread,
/// not one per node.
fn split<T: Send>(jobs: Vec<T>) -> rayon::iter::MinLen<rayon::vec::IntoIter<T>> {
    let per_thread = jobs.len().div_ceil(rayon::current_num_threads().max(1));
    jobs.into_par_iter().with_min_len(per_thread.max(1))
}

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
    fn a_window_is_the_shortest_link_latency_and_never_empty() {
        let lan = crate::network::NetProfile::Lan.links();
        assert_eq!(span(lan), Duration::from_micros(125));
        assert_eq!(
            span(LinkTimings::fixed(Duration::ZERO)),
            Duration::from_nanos(1)
        );
    }
}
