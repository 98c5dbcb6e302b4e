//! Points in time, at microsecond precision.

use std::{fmt, str::FromStr};

use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

use crate::TypeError;

/// Earliest accepted time: 0001-01-01T00:00:00Z (the protobuf Timestamp
/// range), in microseconds since the Unix epoch.
const MIN_MICROS: i64 = -62_135_596_800 * 1_000_000;
/// Latest accepted time: 9999-12-31T23:59:59.999999Z.
const MAX_MICROS: i64 = 253_402_300_799 * 1_000_000 + 999_999;

/// A UTC instant with microsecond precision (the precision the stores keep).
/// Orders chronologically.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Timestamp(i64);

impl Timestamp {
    /// The current time, truncated to microseconds.
    pub fn now() -> Self {
        // Straight from the system clock: no calendar conversion on the
        // request path.
        let micros = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_micros() as i64)
            .unwrap_or_else(|e| -(e.duration().as_micros() as i64));
        Timestamp(micros.clamp(MIN_MICROS, MAX_MICROS))
    }

    /// From microseconds since the Unix epoch; `None` outside years 1-9999.
    pub fn from_micros(micros: i64) -> Option<Self> {
        (MIN_MICROS..=MAX_MICROS).contains(&micros).then_some(Timestamp(micros))
    }

    /// From seconds and nanoseconds since the Unix epoch (the protobuf
    /// form). Nanoseconds below a microsecond are truncated. `None` when
    /// nanos is outside `0..1e9` or the time is outside years 1-9999.
    pub fn from_unix(seconds: i64, nanos: i32) -> Option<Self> {
        if !(0..1_000_000_000).contains(&nanos) {
            return None;
        }
        let micros = seconds.checked_mul(1_000_000)?.checked_add(i64::from(nanos / 1000))?;
        Self::from_micros(micros)
    }

    /// Microseconds since the Unix epoch.
    pub fn as_micros(&self) -> i64 {
        self.0
    }

    /// Seconds and nanoseconds since the Unix epoch (the protobuf form).
    pub fn to_unix(&self) -> (i64, i32) {
        let secs = self.0.div_euclid(1_000_000);
        let nanos = (self.0.rem_euclid(1_000_000) * 1000) as i32;
        (secs, nanos)
    }

    /// Parses RFC 3339 (`2021-11-01T00:00:00Z`, any offset) or a plain date
    /// (`2021-11-01`, meaning midnight UTC).
    pub fn parse(s: &str) -> Result<Self, TypeError> {
        let bad = || TypeError::Timestamp(s.to_owned());
        let dt = if let Ok(dt) = DateTime::parse_from_rfc3339(s) {
            dt.with_timezone(&Utc)
        } else if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
            d.and_hms_opt(0, 0, 0).ok_or_else(bad)?.and_utc()
        } else {
            return Err(bad());
        };
        Self::from_micros(dt.timestamp_micros()).ok_or_else(bad)
    }

    fn to_datetime(self) -> DateTime<Utc> {
        DateTime::from_timestamp_micros(self.0).expect("range checked at construction")
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_datetime().to_rfc3339_opts(SecondsFormat::AutoSi, true))
    }
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Timestamp({self})")
    }
}

impl FromStr for Timestamp {
    type Err = TypeError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Timestamp::parse(s)
    }
}

impl From<Timestamp> for pbjson_types::Timestamp {
    fn from(t: Timestamp) -> Self {
        let (seconds, nanos) = t.to_unix();
        pbjson_types::Timestamp { seconds, nanos }
    }
}

impl TryFrom<&pbjson_types::Timestamp> for Timestamp {
    type Error = TypeError;
    fn try_from(t: &pbjson_types::Timestamp) -> Result<Self, Self::Error> {
        Timestamp::from_unix(t.seconds, t.nanos)
            .ok_or_else(|| TypeError::Timestamp(format!("{{seconds: {}, nanos: {}}}", t.seconds, t.nanos)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_rfc3339_and_dates() {
        let a = Timestamp::parse("2021-11-01").unwrap();
        let b = Timestamp::parse("2021-11-01T02:00:00+02:00").unwrap();
        assert_eq!(a, b);
        assert_eq!(a.to_string(), "2021-11-01T00:00:00Z");
        assert_eq!(Timestamp::parse("2021-11-01T00:00:00.5Z").unwrap().to_string(), "2021-11-01T00:00:00.500Z");
    }

    #[test]
    fn rejects_garbage() {
        for s in ["", "yesterday", "2021-13-01", "2021-11-01T25:00:00Z", "10000-01-01"] {
            assert!(Timestamp::parse(s).is_err(), "{s}");
        }
        assert!(Timestamp::from_unix(0, -1).is_none());
        assert!(Timestamp::from_unix(0, 1_000_000_000).is_none());
        assert!(Timestamp::from_unix(i64::MAX, 0).is_none());
        assert!(Timestamp::from_unix(253_402_300_800, 0).is_none());
    }

    #[test]
    fn proto_round_trip_truncates_to_micros() {
        let t = Timestamp::from_unix(-1, 123_456_789).unwrap();
        let p = pbjson_types::Timestamp::from(t);
        assert_eq!((p.seconds, p.nanos), (-1, 123_456_000));
        assert_eq!(Timestamp::try_from(&p).unwrap(), t);
    }
}
