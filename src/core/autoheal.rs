//! Autoheal's decision: when two sides of a healed partition meet, which one
//! rejoins the other. Pure: no state, no I/O.
//!
//! A *side* is what one node sees as its cluster: itself and its active
//! members. It is summarised by how many of them are core nodes, its size
//! and its lowest node name, and every sync summary carries the sender's.
//! The side with more core nodes wins (so a side of replicants alone never
//! wins against a side with a core node); on as many core nodes the larger
//! side wins; on equal sizes the side holding the lowest node name wins, so
//! three equal sides still resolve (pairwise, always towards the same
//! winner). The losing side's nodes rejoin the winner with renewed
//! identities; the winner's keep theirs. In a cluster of core nodes only
//! (the default) the core count is the size, and the rule is the size rule.

use serde::{Deserialize, Serialize};

use super::name::NodeName;

/// One node's view of its side of a partition.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Side {
    /// Active members plus the node itself.
    pub size: u32,
    /// The lowest name among them.
    pub lowest: NodeName,
    /// How many of them are core nodes (at most `size`).
    pub cores: u32,
}

impl Side {
    /// Whether this side wins against `other`: more core nodes; or as many,
    /// and larger; or as large, with the lower lowest name.
    pub fn beats(&self, other: &Side) -> bool {
        (self.cores, self.size, std::cmp::Reverse(&self.lowest))
            > (other.cores, other.size, std::cmp::Reverse(&other.lowest))
    }

    /// Whether this side has no core node while `other` has one: such a
    /// side never wins against it, under any rule.
    pub fn replicants_only_against(&self, other: &Side) -> bool {
        self.cores == 0 && other.cores > 0
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

    /// A side of core nodes only.
    fn side(size: u32, lowest: &str) -> Side {
        with_cores(size, size, lowest)
    }

    fn with_cores(size: u32, cores: u32, lowest: &str) -> Side {
        Side {
            size,
            lowest: lowest.parse().unwrap(),
            cores,
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

    #[test]
    fn the_side_with_more_core_nodes_wins_even_when_smaller() {
        let (cores, crowd) = (with_cores(3, 3, "z@h.io"), with_cores(9, 1, "a@h.io"));
        assert_eq!(decide(&cores, &crowd, true), Verdict::Stay);
        assert_eq!(decide(&crowd, &cores, true), Verdict::Rejoin);
    }

    #[test]
    fn a_side_of_replicants_alone_never_wins_against_a_side_with_a_core_node() {
        let lone_core = with_cores(1, 1, "z@h.io");
        for size in [1, 2, 50, u32::MAX] {
            let replicants = with_cores(size, 0, "a@h.io");
            assert!(replicants.replicants_only_against(&lone_core));
            assert_eq!(decide(&replicants, &lone_core, false), Verdict::Rejoin);
            assert_eq!(decide(&lone_core, &replicants, false), Verdict::Stay);
        }
    }

    #[test]
    fn on_as_many_core_nodes_the_size_then_the_lowest_name_decide() {
        let (big, small) = (with_cores(6, 2, "z@h.io"), with_cores(4, 2, "a@h.io"));
        assert_eq!(decide(&big, &small, false), Verdict::Stay);
        assert_eq!(decide(&small, &big, false), Verdict::Rejoin);
        let (a, b) = (with_cores(4, 2, "a@h.io"), with_cores(4, 2, "b@h.io"));
        assert_eq!(decide(&a, &b, false), Verdict::Stay);
        assert_eq!(decide(&b, &a, false), Verdict::Rejoin);
    }

    #[test]
    fn two_nodes_deciding_about_each_other_reach_opposite_verdicts_whatever_the_roles() {
        let mut sides = vec![];
        for size in 1..=4 {
            for cores in 0..=size {
                for lowest in ["a@h.io", "b@h.io"] {
                    sides.push(with_cores(size, cores, lowest));
                }
            }
        }
        for x in &sides {
            for y in &sides {
                if x != y {
                    for held in [false, true] {
                        assert_ne!(decide(x, y, held), decide(y, x, held), "{x:?} vs {y:?}");
                    }
                }
            }
        }
    }
}
