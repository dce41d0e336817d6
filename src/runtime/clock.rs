//! tokio's clock as the core's [`Time`]: nanoseconds since the agent started.

use tokio::time::Instant;

use crate::core::Time;

/// Converts between `tokio::time::Instant` and [`Time`], whose epoch is the
/// moment the clock was made. Readings never go backwards, as the core
/// requires.
#[derive(Debug)]
pub(crate) struct Clock {
    start: Instant,
    last: Time,
}

impl Clock {
    /// A clock whose epoch is now.
    pub(crate) fn new() -> Self {
        Self {
            start: Instant::now(),
            last: Time::ZERO,
        }
    }

    /// The current time, never earlier than any reading before it.
    pub(crate) fn now(&mut self) -> Time {
        self.at_least(Time::ZERO)
    }

    /// The current time, or `t` if that is later: a timer that fired a
    /// little early by the clock's rounding is still handled as due.
    pub(crate) fn at_least(&mut self, t: Time) -> Time {
        let real = Time::from_duration(Instant::now().saturating_duration_since(self.start));
        self.last = self.last.max(real).max(t);
        self.last
    }

    /// The instant `t` stands for.
    pub(crate) fn instant(&self, t: Time) -> Instant {
        self.start
            .checked_add(t.as_duration())
            .unwrap_or_else(|| self.start + std::time::Duration::from_secs(86_400 * 365 * 30))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn readings_never_go_backwards_and_convert_both_ways() {
        let mut c = Clock::new();
        let late = Time::ZERO + Duration::from_secs(3600);
        assert_eq!(c.at_least(late), late);
        assert!(c.now() >= late, "a later reading is never earlier");
        assert_eq!(c.instant(late) - c.start, Duration::from_secs(3600));
    }
}
