//! Packet time. Every event and every window in the sensor runs on capture time, never wall-clock time,
//! so that offline runs are reproducible and live runs agree with them.

use serde::{Serialize, Serializer};

/// Nanoseconds since the Unix epoch, as read from the capture.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ts(pub u64);

impl Ts {
    pub const fn from_secs(s: u64) -> Ts {
        Ts(s * 1_000_000_000)
    }
    pub const fn from_micros(us: u64) -> Ts {
        Ts(us * 1_000)
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
}
