//! Autoheal's decision: when two sides of a healed partition meet, which one
//! rejoins the other. Pure: no state, no I/O.
//!
//! A *side* is what one node sees as its cluster: itself and its active
//! members. It is summarised by its size and its lowest node name, and every
//! sync summary carries the sender's. The larger side wins; on equal sizes
//! the side holding the lowest node name wins, so three equal sides still
//! resolve (pairwise, always towards the same winner). The losing side's nodes
//! rejoin the winner with renewed identities; the winner's keep theirs.

use serde::{Deserialize, Serialize};

use super::name::NodeName;

/// One node's view of its side of a partition.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Side {
    /// Active members plus the node itself.
    pub size: u32,
    /// The lowest name among them.
    pub lowest: NodeName,
}

impl Side {
    /// Whether this side wins against `other`: larger, or as large with the
    /// lower lowest name.
    pub fn beats(&self, other: &Side) -> bool {
        self.size > other.size || (self.size == other.size && self.lowest < other.lowest)
    }
}

/// What a node does when it meets the other side of a partition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Our side wins: keep our identity, tell the other side.
    Stay,
    /// Their side wins: forget what we hold down, renew, rejoin them.
    Rejoin,
}

/// Decides between `ours` and `theirs`. Two nodes deciding about each other
/// from the same two sides always reach opposite verdicts. Identical sides
/// (one cluster seen twice) mean a stale record, not a partition: the node
/// that was held down (`they_hold_us_down`) renews.
pub fn decide(ours: &Side, theirs: &Side, they_hold_us_down: bool) -> Verdict {
    if ours.beats(theirs) {
        Verdict::Stay
    } else if theirs.beats(ours) || they_hold_us_down {
        Verdict::Rejoin
    } else {
        Verdict::Stay
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn side(size: u32, lowest: &str) -> Side {
        Side {
            size,
            lowest: lowest.parse().unwrap(),
        }
    }

    #[test]
    fn the_larger_side_stays_and_the_smaller_rejoins() {
        let (big, small) = (side(5, "z@h.io"), side(2, "a@h.io"));
        assert_eq!(decide(&big, &small, false), Verdict::Stay);
        assert_eq!(decide(&small, &big, false), Verdict::Rejoin);
    }

    #[test]
    fn equal_sizes_are_won_by_the_side_holding_the_lowest_name() {
        let (a, b) = (side(3, "a@h.io"), side(3, "b@h.io"));
        assert_eq!(decide(&a, &b, true), Verdict::Stay);
        assert_eq!(decide(&b, &a, true), Verdict::Rejoin);
    }

    #[test]
    fn three_equal_sides_resolve_towards_one_winner_in_any_order() {
        let sides = [side(3, "a@h.io"), side(3, "b@h.io"), side(3, "c@h.io")];
        for x in &sides {
            for y in &sides {
                if x != y {
                    let (vx, vy) = (decide(x, y, false), decide(y, x, false));
                    assert_ne!(vx, vy, "{x:?} vs {y:?}");
                }
            }
            if x != &sides[0] {
                assert_eq!(decide(x, &sides[0], false), Verdict::Rejoin);
            }
        }
    }

    #[test]
    fn the_same_side_seen_twice_renews_only_the_node_held_down() {
        let s = side(4, "a@h.io");
        assert_eq!(decide(&s, &s, true), Verdict::Rejoin);
        assert_eq!(decide(&s, &s, false), Verdict::Stay);
    }
}
