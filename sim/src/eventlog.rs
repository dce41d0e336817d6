//! The event log: every membership event of a run, in order, folded into a
//! hash (and optionally kept as text). Two runs of one seed must produce the
//! same log byte for byte; `--check-determinism` compares the hashes.

use std::fmt::Write as _;

use rollcall::core::{Event, Time};

/// FNV-1a, 64-bit: stable across platforms and releases, unlike `std`'s hasher.
#[derive(Clone, Debug)]
pub struct Fnv64(u64);

impl Default for Fnv64 {
    fn default() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }
}

impl Fnv64 {
    /// Folds bytes into the hash.
    pub fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01B3);
        }
    }

    /// The hash so far.
    pub fn finish(&self) -> u64 {
        self.0
    }
}

/// The kinds of logged entries, as they are hashed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Entry {
    /// A member came up at an observer.
    Up = 1,
    /// A member was declared down at an observer.
    Down = 2,
    /// A member's identity was renewed at an observer.
    Renewed = 3,
    /// The node joined a cluster.
    Joined = 4,
    /// The node is alone.
    Alone = 5,
    /// The node renewed its own identity.
    SelfRenewed = 6,
    /// The world started a node.
    Start = 7,
    /// The world crashed a node.
    Crash = 8,
    /// A scenario operation.
    Op = 9,
    /// A member left or was removed by force-leave.
    Left = 10,
    /// Any other event, by its debug form.
    Other = 11,
}

/// The run's event log.
#[derive(Clone, Debug, Default)]
pub struct EventLog {
    hash: Fnv64,
    entries: u64,
    text: Option<String>,
    /// Every event as the nodes reported it, when kept (not hashed).
    events: Option<Vec<(Time, u32, Event)>>,
}

impl EventLog {
    /// A log that only hashes, or that also keeps every line when
    /// `keep_text` is set, and every event as a value when `keep_events` is.
    pub fn new(keep_text: bool, keep_events: bool) -> Self {
        Self {
            hash: Fnv64::default(),
            entries: 0,
            text: keep_text.then(String::new),
            events: keep_events.then(Vec::new),
        }
    }

    /// Keeps `event`, reported by `node` at `now`, if events are kept. The
    /// hash does not see it: the entries recorded for it do.
    pub fn keep_event(&mut self, now: Time, node: u32, event: &Event) {
        if let Some(events) = self.events.as_mut() {
            events.push((now, node, event.clone()));
        }
    }

    /// Every event kept so far, as (time, node, event); empty when events
    /// are not kept.
    pub fn events(&self) -> &[(Time, u32, Event)] {
        self.events.as_deref().unwrap_or_default()
    }

    /// Records that at `now`, `node` saw `entry` about `subject` (generation `generation`).
    pub fn record(&mut self, now: Time, node: u32, entry: Entry, subject: u32, generation: u64) {
        self.entries += 1;
        self.hash.write(&now.as_nanos().to_le_bytes());
        self.hash.write(&node.to_le_bytes());
        self.hash.write(&[entry as u8]);
        self.hash.write(&subject.to_le_bytes());
        self.hash.write(&generation.to_le_bytes());
        if let Some(text) = self.text.as_mut() {
            let _ = writeln!(
                text,
                "{:>14} n{node} {entry:?} n{subject} g{generation}",
                now.as_nanos()
            );
        }
    }

    /// Records a scenario operation by its description.
    pub fn record_op(&mut self, now: Time, what: &str) {
        self.entries += 1;
        self.hash.write(&now.as_nanos().to_le_bytes());
        self.hash.write(&[Entry::Op as u8]);
        self.hash.write(what.as_bytes());
        if let Some(text) = self.text.as_mut() {
            let _ = writeln!(text, "{:>14} op {what}", now.as_nanos());
        }
    }

    /// Records an event that does not change the active set, by its debug form.
    pub fn record_other(&mut self, now: Time, node: u32, what: &str) {
        self.entries += 1;
        self.hash.write(&now.as_nanos().to_le_bytes());
        self.hash.write(&node.to_le_bytes());
        self.hash.write(&[Entry::Other as u8]);
        self.hash.write(what.as_bytes());
        if let Some(text) = self.text.as_mut() {
            let _ = writeln!(text, "{:>14} n{node} {what}", now.as_nanos());
        }
    }

    /// The hash of every entry so far.
    pub fn hash(&self) -> u64 {
        self.hash.finish()
    }

    /// How many entries were recorded.
    pub fn len(&self) -> u64 {
        self.entries
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.entries == 0
    }

    /// The log as text, when it was kept.
    pub fn text(&self) -> Option<&str> {
        self.text.as_deref()
    }
}
