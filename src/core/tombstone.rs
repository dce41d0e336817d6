//! Tombstones: the memory that a node left or was force-left.
//!
//! A tombstone covers a name up to a generation, whatever the renewal: while
//! it is held, any record of that name at that generation or an older one is
//! kept down and hidden from `status`, however it arrives (stale gossip, a
//! node that still has it in its view, a full-state sync). Only a newer
//! generation (a restart, or an explicit `join` after leaving) gets past it.
//! Tombstones are kept until autoclean forgets them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::identity::NodeId;
use super::name::{NameKey, NodeName};
use super::time::Time;

/// How a node departed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Departure {
    /// It ran `leave`.
    Left,
    /// An operator removed it with `force-leave`.
    ForceLeft,
}

/// A departed node: its name, the last generation the departure covers, how.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Tombstone {
    /// The departed node's name.
    pub name: NodeName,
    /// Records of this name at this generation or older are covered.
    pub generation: u64,
    /// How it departed.
    pub kind: Departure,
}

impl Tombstone {
    /// The tombstone for `id` departing as `kind`.
    pub fn of(id: &NodeId, kind: Departure) -> Self {
        Self {
            name: id.name().clone(),
            generation: id.generation(),
            kind,
        }
    }

    /// Whether this tombstone keeps `id` out.
    pub fn covers(&self, id: &NodeId) -> bool {
        id.name() == &self.name && id.generation() <= self.generation
    }

    /// Whether `self` carries news over `held`: a newer generation, or a
    /// force-leave of a generation only known to have left.
    pub fn supersedes(&self, held: &Tombstone) -> bool {
        self.generation > held.generation
            || (self.generation == held.generation && self.kind > held.kind)
    }
}

/// The tombstones a node holds, by name, with when each was first learned
/// (on this node's clock, moved earlier when a peer reports an older one).
#[derive(Clone, Debug, Default)]
pub struct Tombstones {
    map: BTreeMap<NameKey, (Tombstone, Time)>,
}

impl Tombstones {
    /// The tombstone held for a name.
    pub fn get(&self, name: &NodeName) -> Option<&Tombstone> {
        self.map.get(&name.key()).map(|(t, _)| t)
    }

    /// Whether a held tombstone keeps `id` out.
    pub fn covers(&self, id: &NodeId) -> bool {
        self.map.get(&id.key()).is_some_and(|(t, _)| t.covers(id))
    }

    /// Records `t`, learned as having been made at `since`. Returns whether
    /// it was news (no tombstone for the name, or `t` supersedes it). When
    /// it is not news, an earlier `since` still moves the held one earlier.
    pub fn insert(&mut self, t: Tombstone, since: Time) -> bool {
        match self.map.get_mut(&t.name.key()) {
            Some((held, held_since)) if !t.supersedes(held) => {
                if *held == t && since < *held_since {
                    *held_since = since;
                }
                false
            }
            _ => {
                self.map.insert(t.name.key(), (t, since));
                true
            }
        }
    }

    /// Removes and returns the tombstones made at or before `cutoff`.
    pub fn expire(&mut self, cutoff: Time) -> Vec<Tombstone> {
        let due: Vec<NameKey> = self
            .map
            .iter()
            .filter(|(_, (_, since))| *since <= cutoff)
            .map(|(k, _)| *k)
            .collect();
        due.into_iter()
            .filter_map(|k| self.map.remove(&k).map(|(t, _)| t))
            .collect()
    }

    /// Every tombstone with the time it was made.
    pub fn iter(&self) -> impl Iterator<Item = (&Tombstone, Time)> {
        self.map.values().map(|(t, s)| (t, *s))
    }

    /// How many are held.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether none is held.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn id(generation: u64) -> NodeId {
        NodeId::new(
            "rc@h.io".parse().unwrap(),
            "10.0.0.1:4370".parse().unwrap(),
            generation,
        )
    }

    #[test]
    fn a_tombstone_covers_every_renewal_of_its_generation_but_not_the_next_generation() {
        let t = Tombstone::of(&id(5), Departure::ForceLeft);
        assert!(t.covers(&id(5)));
        assert!(t.covers(&id(5).renewed().renewed()));
        assert!(t.covers(&id(4)));
        assert!(!t.covers(&id(5).next_generation()));
    }

    #[test]
    fn only_newer_generations_or_a_force_leave_over_a_leave_are_news() {
        let mut ts = Tombstones::default();
        let left = Tombstone::of(&id(5), Departure::Left);
        assert!(ts.insert(left.clone(), Time::ZERO));
        assert!(!ts.insert(left.clone(), Time::ZERO));
        assert!(ts.insert(Tombstone::of(&id(5), Departure::ForceLeft), Time::ZERO));
        assert!(!ts.insert(left, Time::ZERO));
        assert!(!ts.insert(Tombstone::of(&id(4), Departure::ForceLeft), Time::ZERO));
        assert!(ts.insert(Tombstone::of(&id(6), Departure::Left), Time::ZERO));
        assert_eq!(ts.len(), 1);
    }

    #[test]
    fn tombstones_expire_by_the_time_they_were_made_and_an_older_report_moves_it_earlier() {
        let mut ts = Tombstones::default();
        let t = Tombstone::of(&id(1), Departure::Left);
        let at = |s| Time::ZERO + Duration::from_secs(s);
        ts.insert(t.clone(), at(100));
        ts.insert(t.clone(), at(40));
        assert!(ts.expire(at(39)).is_empty());
        assert_eq!(ts.expire(at(40)), [t]);
        assert!(ts.is_empty());
    }
}
