//! One ordered deadline queue for the timers foca asks for.
//!
//! foca schedules its own wakeups through `Runtime::submit_after`; every
//! driver would otherwise need a scheduler of its own. [`TimerQueue`] keeps
//! them in one binary heap ordered by deadline, and among equal deadlines by
//! the order they were submitted, so the simulator replays them identically.
//! foca puts a token in each timer and ignores stale ones, so the queue never
//! needs to cancel anything.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;

use super::time::Time;

/// A min-queue of events keyed by deadline, FIFO among equal deadlines.
#[derive(Debug)]
pub struct TimerQueue<E> {
    heap: BinaryHeap<Reverse<Entry<E>>>,
    next_seq: u64,
}

#[derive(Debug)]
struct Entry<E> {
    at: Time,
    seq: u64,
    event: E,
}

impl<E> PartialEq for Entry<E> {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl<E> Eq for Entry<E> {}
impl<E> PartialOrd for Entry<E> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl<E> Ord for Entry<E> {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

impl<E> Default for TimerQueue<E> {
    fn default() -> Self {
        Self {
            heap: BinaryHeap::new(),
            next_seq: 0,
        }
    }
}

impl<E> TimerQueue<E> {
    /// Schedules `event` for `at`.
    pub fn push(&mut self, at: Time, event: E) {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.heap.push(Reverse(Entry { at, seq, event }));
    }

    /// The earliest deadline, if any.
    pub fn next_deadline(&self) -> Option<Time> {
        self.heap.peek().map(|Reverse(e)| e.at)
    }

    /// Removes and returns the earliest event due at or before `now`.
    pub fn pop_due(&mut self, now: Time) -> Option<E> {
        if self.next_deadline()? <= now {
            self.heap.pop().map(|Reverse(e)| e.event)
        } else {
            None
        }
    }

    /// Number of pending timers.
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    /// Whether no timer is pending.
    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }

    /// Keeps only the pending timers `keep` approves of.
    pub fn retain(&mut self, mut keep: impl FnMut(&E) -> bool) {
        self.heap.retain(|Reverse(e)| keep(&e.event));
    }

    /// Drops every pending timer.
    pub fn clear(&mut self) {
        self.heap.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn at(ms: u64) -> Time {
        Time::ZERO + Duration::from_millis(ms)
    }

    #[test]
    fn timers_come_out_in_deadline_order_and_fifo_among_equals() {
        let mut q = TimerQueue::default();
        q.push(at(30), "c");
        q.push(at(10), "a1");
        q.push(at(20), "b");
        q.push(at(10), "a2");
        assert_eq!(q.next_deadline(), Some(at(10)));
        let mut out = vec![];
        while let Some(e) = q.pop_due(at(100)) {
            out.push(e);
        }
        assert_eq!(out, ["a1", "a2", "b", "c"]);
        assert!(q.is_empty());
    }

    #[test]
    fn a_timer_is_not_due_before_its_deadline() {
        let mut q = TimerQueue::default();
        q.push(at(10), 1);
        assert_eq!(q.pop_due(at(9)), None);
        assert_eq!(q.len(), 1);
        assert_eq!(q.pop_due(at(10)), Some(1));
    }
}
