//! Packet time. Every event and every window in the sensor runs on capture time, never wall-clock time,
//! so that offline runs are reproducible and live runs agree with them.

use serde::{Serialize, Serializer};

/// Nanoseconds since the Unix epoch, as read from the capture.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ts(pub u64);

impl Ts {
    /// Saturates at the largest time (year 2554): seconds can come off the wire.
    pub const fn from_secs(s: u64) -> Ts {
        Ts(s.saturating_mul(1_000_000_000))
    }
    /// None past the largest time (year 2554), for callers that must not clamp a wire value.
    pub const fn checked_from_secs(s: u64) -> Option<Ts> {
        match s.checked_mul(1_000_000_000) {
            Some(ns) => Some(Ts(ns)),
            None => None,
        }
    }
    /// Saturates like [`Ts::from_secs`].
    pub const fn from_micros(us: u64) -> Ts {
        Ts(us.saturating_mul(1_000))
    }
    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / 1e9
    }
    /// Seconds from `earlier` to `self`, 0 if `earlier` is later.
    pub fn secs_since(self, earlier: Ts) -> f64 {
        self.0.saturating_sub(earlier.0) as f64 / 1e9
    }
    pub fn saturating_add_secs(self, s: u64) -> Ts {
        Ts(self.0.saturating_add(s.saturating_mul(1_000_000_000)))
    }
}

/// Zeek writes `ts` as seconds with microseconds; so do we.
impl Serialize for Ts {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let micros = self.0 / 1_000;
        s.serialize_f64((micros as f64) / 1e6)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn serializes_as_seconds_with_micros() {
        let t = Ts(1_323_202_604_512_058_999);
        assert_eq!(serde_json::to_string(&t).unwrap(), "1323202604.512058");
    }

    #[test]
    fn seconds_past_the_range_saturate_or_are_refused() {
        assert_eq!(Ts::from_secs(u64::MAX), Ts(u64::MAX));
        assert_eq!(Ts::from_micros(u64::MAX), Ts(u64::MAX));
        assert_eq!(Ts::checked_from_secs(u64::MAX / 1_000_000_000 + 1), None);
        assert_eq!(Ts::checked_from_secs(7), Some(Ts(7_000_000_000)));
    }
}
