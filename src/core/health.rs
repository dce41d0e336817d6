//! Local health: how much a node trusts its own view of time (Lifeguard's
//! "local health awareness").
//!
//! A node that is slow (a starved CPU, a pause, a saturated link) sees its
//! probes fail for reasons of its own and would suspect healthy members.
//! The score rises with signs of that (a probe that failed, a suspicion of
//! this node it had to refute) and falls with each probe that succeeded;
//! the node waits `multiplier()` times longer for acks and between probes,
//! so a slow node probes less and gives answers more time. Lifeguard
//! (Dadgar et al., DSN 2018) and memberlist cap the multiplier at 8.
//!
//! foca has no "nack" (memberlist's answer from an intermediary that
//! could not reach the target), so a missing indirect ack shows only as
//! the probe failing: it counts once, not once per intermediary.

use std::time::Duration;

/// The largest multiplier: a node at its worst waits 8 times as long.
pub const MAX_MULTIPLIER: u32 = 8;

/// The health score: 0 is healthy; `MAX_MULTIPLIER - 1` is the worst.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Health {
    score: u32,
}

impl Health {
    /// A probe of ours got no ack, direct or indirect.
    pub fn probe_failed(&mut self) {
        self.raise();
    }

    /// We had to refute a suspicion of ourselves.
    pub fn refuted(&mut self) {
        self.raise();
    }

    /// A probe of ours was answered.
    pub fn probe_succeeded(&mut self) {
        self.score = self.score.saturating_sub(1);
    }

    fn raise(&mut self) {
        self.score = (self.score + 1).min(MAX_MULTIPLIER - 1);
    }

    /// The score, 0 (healthy) to `MAX_MULTIPLIER - 1`.
    pub fn score(self) -> u32 {
        self.score
    }

    /// How many times longer to wait: `score + 1`, 1 to [`MAX_MULTIPLIER`].
    pub fn multiplier(self) -> u32 {
        self.score + 1
    }

    /// `d` stretched by the multiplier.
    pub fn scale(self, d: Duration) -> Duration {
        d * self.multiplier()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_and_refutes_raise_the_score_up_to_the_cap() {
        let mut h = Health::default();
        assert_eq!(h.multiplier(), 1);
        h.probe_failed();
        h.refuted();
        assert_eq!(h.score(), 2);
        for _ in 0..20 {
            h.probe_failed();
        }
        assert_eq!(h.multiplier(), MAX_MULTIPLIER);
        assert_eq!(
            h.scale(Duration::from_millis(500)),
            Duration::from_secs(4),
            "500 ms stretched 8 times"
        );
    }

    #[test]
    fn successes_lower_the_score_to_zero_and_no_further() {
        let mut h = Health::default();
        h.probe_failed();
        h.probe_failed();
        h.probe_succeeded();
        assert_eq!(h.score(), 1);
        h.probe_succeeded();
        h.probe_succeeded();
        assert_eq!(h.score(), 0);
        assert_eq!(h.scale(Duration::from_secs(1)), Duration::from_secs(1));
    }
}
