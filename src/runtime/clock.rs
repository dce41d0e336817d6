//! tokio's clock as the core's [`Time`]: nanoseconds since the agent started;
//! and a `Time` as a date, for what the agent shows operators.

use std::time::SystemTime;

use tokio::time::Instant;

use crate::core::Time;

/// Converts between `tokio::time::Instant` and [`Time`], whose epoch is the
/// moment the clock was made. Readings never go backwards, as the core
/// requires.
#[derive(Debug)]
pub(crate) struct Clock {
    start: Instant,
    /// The date at `start`.
    wall_start: SystemTime,
    last: Time,
}

impl Clock {
    /// A clock whose epoch is now.
    pub(crate) fn new() -> Self {
        Self {
            start: Instant::now(),
            wall_start: SystemTime::now(),
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

    /// The date `t` stands for: the agent's start date plus `t` (the
    /// monotonic clock's reading, so later changes of the system clock
    /// do not move it).
    pub(crate) fn wall(&self, t: Time) -> SystemTime {
        self.wall_start + t.as_duration()
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
        assert_eq!(
            c.wall(late).duration_since(c.wall(Time::ZERO)).unwrap(),
            Duration::from_secs(3600)
        );
    }

    #[test]
    fn dates_are_written_in_rfc_3339_with_milliseconds_and_read_back() {
        let t = std::time::UNIX_EPOCH + Duration::from_millis(1_767_225_600_123);
        let json = serde_json::to_string(&Dated { at: t }).unwrap();
        assert_eq!(json, r#"{"at":"2026-01-01T00:00:00.123Z"}"#);
        assert_eq!(serde_json::from_str::<Dated>(&json).unwrap().at, t);
        assert!(serde_json::from_str::<Dated>(r#"{"at":"yesterday"}"#).is_err());
    }

    #[derive(serde::Serialize, serde::Deserialize)]
    struct Dated {
        #[serde(with = "super::rfc3339")]
        at: SystemTime,
    }
}

/// A date in JSON: RFC 3339 in UTC with milliseconds
/// (`2026-01-01T00:00:00.123Z`), for `#[serde(with = "rfc3339")]`.
pub(crate) mod rfc3339 {
    use std::time::SystemTime;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&humantime::format_rfc3339_millis(*t))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<SystemTime, D::Error> {
        let text = String::deserialize(d)?;
        humantime::parse_rfc3339(&text).map_err(serde::de::Error::custom)
    }

    /// The same for an optional date (`null` when absent).
    pub(crate) mod option {
        use std::time::SystemTime;

        use serde::{Deserialize, Deserializer, Serializer};

        pub(crate) fn serialize<S: Serializer>(
            t: &Option<SystemTime>,
            s: S,
        ) -> Result<S::Ok, S::Error> {
            match t {
                Some(t) => s.collect_str(&humantime::format_rfc3339_millis(*t)),
                None => s.serialize_none(),
            }
        }

        pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
            d: D,
        ) -> Result<Option<SystemTime>, D::Error> {
            Option::<String>::deserialize(d)?
                .map(|text| humantime::parse_rfc3339(&text).map_err(serde::de::Error::custom))
                .transpose()
        }
    }
}
