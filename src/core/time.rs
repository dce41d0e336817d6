//! Virtual-or-real time as the core sees it: a point on the driver's clock.
//!
//! The core never reads a clock. The driver (the tokio runtime or the
//! simulator) passes `now` into every call as a [`Time`]: nanoseconds since an
//! epoch of the driver's choosing (the agent's start, or zero in a simulation).

use std::ops::{Add, Sub};
use std::time::Duration;

/// A point in time, in nanoseconds since the driver's epoch.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Time(u64);

impl Time {
    /// The epoch.
    pub const ZERO: Time = Time(0);

    /// `d` after the epoch (saturating at about 584 years).
    pub fn from_duration(d: Duration) -> Self {
        Time(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
    }

    /// `secs` seconds after the epoch.
    pub fn from_secs_f64(secs: f64) -> Self {
        Self::from_duration(Duration::from_secs_f64(secs.max(0.0)))
    }

    /// The time since the epoch.
    pub fn as_duration(self) -> Duration {
        Duration::from_nanos(self.0)
    }

    /// Nanoseconds since the epoch.
    pub fn as_nanos(self) -> u64 {
        self.0
    }

    /// Seconds since the epoch.
    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / 1e9
    }

    /// How long after `earlier` this is (zero if it is not after).
    pub fn saturating_since(self, earlier: Time) -> Duration {
        Duration::from_nanos(self.0.saturating_sub(earlier.0))
    }
}

impl Add<Duration> for Time {
    type Output = Time;
    fn add(self, d: Duration) -> Time {
        Time(
            self.0
                .saturating_add(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)),
        )
    }
}

impl Sub<Time> for Time {
    type Output = Duration;
    fn sub(self, earlier: Time) -> Duration {
        self.saturating_since(earlier)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adding_a_duration_moves_time_forward_and_saturates_at_the_end() {
        let t = Time::ZERO + Duration::from_millis(1500);
        assert_eq!(t.as_secs_f64(), 1.5);
        assert_eq!(t - Time::ZERO, Duration::from_millis(1500));
        assert_eq!(Time::ZERO - t, Duration::ZERO);
        assert_eq!(Time(u64::MAX) + Duration::from_secs(1), Time(u64::MAX));
    }
}
