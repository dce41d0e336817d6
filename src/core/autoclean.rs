//! Autoclean's bookkeeping: since when each member has been down.
//!
//! A member down longer than `cluster.autoclean` is forgotten by every node.
//! Each node keeps, per down member, the time it went down on its own clock.
//! Full-state sync carries the *age* of each down record (how long ago it
//! went down), never a timestamp, since nodes' clocks share no epoch; the
//! receiver keeps the earlier of its own time and `now - age`. So all nodes
//! converge on the earliest report and forget the member at about the same
//! moment, and a record older than the autoclean age is never taken from a
//! peer that has not forgotten it yet: the view stops growing.

use std::collections::BTreeMap;
use std::time::Duration;

use super::name::NameKey;
use super::time::Time;

/// Since when each down member has been down, with its version.
#[derive(Clone, Debug, Default)]
pub struct DownClock {
    map: BTreeMap<NameKey, Down>,
}

/// One down member's entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Down {
    /// `(generation, renewal)` of the identity held down.
    pub version: (u64, u32),
    /// When it went down, on this node's clock.
    pub since: Time,
}

impl DownClock {
    /// Notes that `key` at `version` is down since `since`. A newer version
    /// replaces the entry; the same version keeps the earlier time.
    pub fn note(&mut self, key: NameKey, version: (u64, u32), since: Time) {
        let e = self.map.entry(key).or_insert(Down { version, since });
        if version > e.version {
            *e = Down { version, since };
        } else if version == e.version && since < e.since {
            e.since = since;
        }
    }

    /// The entry for `key`.
    pub fn get(&self, key: NameKey) -> Option<Down> {
        self.map.get(&key).copied()
    }

    /// Forgets `key`.
    pub fn remove(&mut self, key: NameKey) -> Option<Down> {
        self.map.remove(&key)
    }

    /// Keeps only the entries `keep` approves of.
    pub fn retain(&mut self, mut keep: impl FnMut(NameKey, &Down) -> bool) {
        self.map.retain(|k, d| keep(*k, d));
    }

    /// The members down at or before `cutoff`.
    pub fn due(&self, cutoff: Time) -> Vec<NameKey> {
        self.map
            .iter()
            .filter(|(_, d)| d.since <= cutoff)
            .map(|(k, _)| *k)
            .collect()
    }

    /// Whether no member is down.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// How many members are down.
    pub fn len(&self) -> usize {
        self.map.len()
    }
}

/// How often the autoclean sweep runs for a given autoclean age: a
/// twentieth of it, between 1 s and 60 s, so a member is forgotten at most
/// 5% (or a minute) late.
pub fn sweep_interval(autoclean: Duration) -> Duration {
    (autoclean / 20).clamp(Duration::from_secs(1), Duration::from_secs(60))
}

/// `now - age`, clamped at the epoch: when a record of the given age began.
pub fn since_from_age(now: Time, age: Duration) -> Time {
    Time::from_duration(now.as_duration().saturating_sub(age))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: u64) -> Time {
        Time::ZERO + Duration::from_secs(s)
    }

    #[test]
    fn the_earliest_report_of_a_version_wins_and_a_newer_version_restarts_the_clock() {
        let mut c = DownClock::default();
        let k = "rc@h.io".parse::<crate::core::NodeName>().unwrap().key();
        c.note(k, (1, 0), at(50));
        c.note(k, (1, 0), at(30));
        c.note(k, (1, 0), at(60));
        assert_eq!(c.get(k).unwrap().since, at(30));
        c.note(k, (1, 1), at(70));
        assert_eq!(
            c.get(k).unwrap(),
            Down {
                version: (1, 1),
                since: at(70)
            }
        );
        c.note(k, (1, 0), at(10));
        assert_eq!(c.get(k).unwrap().version, (1, 1));
    }

    #[test]
    fn members_are_due_once_down_past_the_cutoff() {
        let mut c = DownClock::default();
        let k = "rc@h.io".parse::<crate::core::NodeName>().unwrap().key();
        c.note(k, (1, 0), at(100));
        assert!(c.due(at(99)).is_empty());
        assert_eq!(c.due(at(100)), [k]);
    }

    #[test]
    fn the_sweep_interval_is_a_twentieth_of_autoclean_within_bounds() {
        assert_eq!(
            sweep_interval(Duration::from_secs(24 * 3600)),
            Duration::from_secs(60)
        );
        assert_eq!(
            sweep_interval(Duration::from_secs(100)),
            Duration::from_secs(5)
        );
        assert_eq!(
            sweep_interval(Duration::from_secs(2)),
            Duration::from_secs(1)
        );
        assert_eq!(since_from_age(at(5), Duration::from_secs(9)), Time::ZERO);
    }
}
