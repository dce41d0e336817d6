//! The events an agent saw since it started, dated and numbered, in a
//! bounded history: what `rollcall ctl monitor --since-start` replays.
//!
//! The owner task records every event it reports; the history keeps the
//! last [`HISTORY_LEN`] and counts the older ones it dropped. A monitor
//! takes a copy of the history and a subscription to what follows in one
//! step of the owner task, so it misses nothing and sees nothing twice.

use std::collections::VecDeque;
use std::time::SystemTime;

use crate::core::Event;

/// How many events an agent keeps for a replay: the last 10,000 (2 MB at
/// most, the names aside); older ones are dropped and counted.
pub const HISTORY_LEN: usize = 10_000;

/// One event as the agent reported it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordedEvent {
    /// Its number: 1 for the first event since the agent started, one
    /// more for each next.
    pub seq: u64,
    /// When the agent reported it.
    pub at: SystemTime,
    /// What happened.
    pub event: Event,
}

/// The last [`HISTORY_LEN`] events, with a count of those dropped.
#[derive(Debug, Default)]
pub(crate) struct History {
    events: VecDeque<RecordedEvent>,
    /// Events recorded so far (the last one's `seq`).
    recorded: u64,
    /// Events dropped to keep the bound.
    dropped: u64,
}

impl History {
    /// Records `event`, reported at `at`, dropping the oldest if full.
    pub(crate) fn record(&mut self, at: SystemTime, event: Event) -> RecordedEvent {
        self.record_within(HISTORY_LEN, at, event)
    }

    fn record_within(&mut self, bound: usize, at: SystemTime, event: Event) -> RecordedEvent {
        self.recorded += 1;
        let recorded = RecordedEvent {
            seq: self.recorded,
            at,
            event,
        };
        while self.events.len() >= bound {
            self.events.pop_front();
            self.dropped += 1;
        }
        if self.events.len() == self.events.capacity() {
            // Grow by doubling, but never past the bound.
            let more = self.events.len().max(16).min(bound - self.events.len());
            self.events.reserve_exact(more);
        }
        self.events.push_back(recorded.clone());
        recorded
    }

    /// A copy of the events kept, oldest first, and how many older ones
    /// were dropped.
    pub(crate) fn snapshot(&self) -> (Vec<RecordedEvent>, u64) {
        (self.events.iter().cloned().collect(), self.dropped)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_history_keeps_the_newest_events_in_order_and_counts_the_dropped() {
        let mut h = History::default();
        let at = SystemTime::UNIX_EPOCH;
        for _ in 0..5 {
            h.record_within(3, at, Event::Joined);
        }
        let (kept, dropped) = h.snapshot();
        assert_eq!(kept.iter().map(|e| e.seq).collect::<Vec<_>>(), [3, 4, 5]);
        assert_eq!(dropped, 2);
        let next = h.record(at, Event::Alone);
        assert_eq!(next.seq, 6);
        assert_eq!(next.event, Event::Alone);
    }

    #[test]
    fn a_full_history_holds_at_most_two_megabytes() {
        let size = std::mem::size_of::<RecordedEvent>();
        assert!(size * HISTORY_LEN <= 2_000_000, "{size} bytes an event");
        let mut h = History::default();
        for _ in 0..HISTORY_LEN + 5 {
            h.record(SystemTime::UNIX_EPOCH, Event::Joined);
        }
        assert_eq!(h.events.len(), HISTORY_LEN);
        assert!(h.events.capacity() < HISTORY_LEN + 16);
    }
}
