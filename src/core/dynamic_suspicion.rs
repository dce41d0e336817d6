//! How long a suspicion runs: Lifeguard's dynamic suspicion timeout.
//!
//! A suspicion starts on the long timeout `max` and shrinks towards `min`
//! as independent confirmations arrive (other members whose own probes of
//! the suspect failed): with `c` confirmations of `k` expected, the timeout
//! is `max - (max - min) * ln(c + 1) / ln(k + 1)`, never below `min`
//! (Dadgar et al., DSN 2018, section IV-B; memberlist's `suspicion.go`).
//! A member that really failed is confirmed by every node that probes it,
//! so its suspicion runs about `min`; a suspicion raised by one slow or
//! badly connected node alone runs `max`, which leaves the suspect many
//! times longer to hear of it and refute.

use std::time::Duration;

/// `max` is this many times `min` (memberlist's `SuspicionMaxTimeoutMult`).
pub const MAX_TIMEOUT_MULTIPLIER: u32 = 6;

/// Confirmations after which a suspicion runs its shortest timeout
/// (memberlist's `SuspicionMult - 2` for its LAN profile).
pub const EXPECTED_CONFIRMATIONS: u32 = 2;

/// The confirmations to expect in a cluster where this node knows
/// `members` other members: [`EXPECTED_CONFIRMATIONS`], unless too few
/// members could send them (the suspect and this node do not count), in
/// which case none are expected and the suspicion runs `min`.
pub fn expected_confirmations(members: usize) -> u32 {
    let others = members.saturating_sub(1) as u64;
    if others < u64::from(EXPECTED_CONFIRMATIONS) {
        0
    } else {
        EXPECTED_CONFIRMATIONS
    }
}

/// The timeout of a suspicion with `confirmations` of `expected`, between
/// `min` and `max`.
pub fn suspicion_timeout(
    min: Duration,
    max: Duration,
    expected: u32,
    confirmations: u32,
) -> Duration {
    if expected == 0 || max <= min {
        return min;
    }
    let frac = f64::from(confirmations.saturating_add(1)).ln() / f64::from(expected + 1).ln();
    let span = (max - min).as_secs_f64();
    let raw = max.as_secs_f64() - frac * span;
    if raw <= min.as_secs_f64() {
        min
    } else {
        // Whole milliseconds, as memberlist rounds.
        Duration::from_millis((raw * 1000.0).floor() as u64).max(min)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(x: f64) -> Duration {
        Duration::from_secs_f64(x)
    }

    #[test]
    fn the_timeout_shrinks_with_each_confirmation_down_to_min() {
        // min 8 s, max 48 s (LAN, 100 nodes), 2 expected:
        // 48 - 40 * ln(c + 1) / ln 3, floored to the millisecond.
        let table = [
            (0, s(48.0)),
            (1, s(22.762)),
            (2, s(8.0)),
            (3, s(8.0)),
            (50, s(8.0)),
        ];
        for (c, want) in table {
            assert_eq!(suspicion_timeout(s(8.0), s(48.0), 2, c), want, "c = {c}");
        }
    }

    #[test]
    fn with_nothing_expected_or_no_span_the_timeout_is_min() {
        assert_eq!(suspicion_timeout(s(2.0), s(12.0), 0, 0), s(2.0));
        assert_eq!(suspicion_timeout(s(2.0), s(2.0), 2, 0), s(2.0));
        assert_eq!(suspicion_timeout(s(2.0), s(1.0), 2, 0), s(2.0));
    }

    #[test]
    fn small_clusters_expect_no_confirmations() {
        assert_eq!(expected_confirmations(0), 0);
        assert_eq!(expected_confirmations(2), 0);
        assert_eq!(expected_confirmations(3), 2);
        assert_eq!(expected_confirmations(1000), 2);
    }
}
