//! Segments the receiver would drop by the sensor's reading, held until the receiver's own ACK
//! says otherwise.
//!
//! The sensor's reading can be wrong where the capture is: a capture on the sending host shows
//! segmentation-offload super-segments whose checksum the NIC fills in later (bad in the file,
//! good on the wire), and a capture that lost some of a sender's packets makes the receiver's
//! ACKs look like acknowledgements of data never sent. The endpoint settles it: if it
//! acknowledges bytes that only a held segment carried, it took that segment, and so does the
//! sensor. A decoy never gets there: the endpoint can only acknowledge bytes after the real copy
//! reached it, and the real copy, reaching the sensor first, fills the stream where the decoy
//! would have gone (a held segment is only used where the stream is still empty).

use super::Direction;

/// Held segments per flow; beyond it a new one is dropped (and counted).
pub const MAX_SUSPECT_SEGMENTS_PER_FLOW: usize = 32;
/// Held bytes across every flow of a worker; beyond it a new one is dropped (and counted).
pub const MAX_SUSPECT_BYTES_TOTAL: usize = 16 << 20;

/// One held segment.
#[derive(Debug)]
pub struct Suspect {
    pub dir: Direction,
    /// Sequence number of its first data byte.
    pub seq: u32,
    /// Its ACK number (believed too once the segment is).
    pub ack: Option<u32>,
    pub payload: Vec<u8>,
}

/// What to do with a held segment when the receiver acknowledges up to `ack` and the stream of
/// its direction waits for `next_seq`.
#[derive(Debug, PartialEq, Eq)]
pub enum Fate {
    /// The stream already has bytes from where it starts (a copy the receiver believed): gone.
    Superseded,
    /// The receiver acknowledged into it and the stream lacks it: take it.
    Confirmed,
    /// Not acknowledged yet.
    Wait,
}

impl Suspect {
    pub fn fate(&self, next_seq: Option<u32>, ack: u32) -> Fate {
        if let Some(next) = next_seq {
            if (self.seq.wrapping_sub(next) as i32) < 0 {
                return Fate::Superseded;
            }
        }
        if (ack.wrapping_sub(self.seq) as i32) > 0 {
            Fate::Confirmed
        } else {
            Fate::Wait
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fates() {
        let s = Suspect {
            dir: Direction::ToServer,
            seq: 1000,
            ack: None,
            payload: vec![0; 100],
        };
        // The stream went past its start: a believed copy came first.
        assert_eq!(s.fate(Some(1001), 5000), Fate::Superseded);
        assert_eq!(s.fate(Some(1000), 1000), Fate::Wait);
        assert_eq!(s.fate(Some(1000), 1001), Fate::Confirmed);
        // A hole before it: still confirmed (reassembly buffers it after the hole).
        assert_eq!(s.fate(Some(900), 1100), Fate::Confirmed);
        assert_eq!(s.fate(None, 1100), Fate::Confirmed);
        // Wraparound.
        let w = Suspect {
            seq: u32::MAX - 10,
            ..s
        };
        assert_eq!(w.fate(Some(u32::MAX - 10), 5), Fate::Confirmed);
    }
}
