//! Where packets come from: capture files (pcap, pcapng, gzip, directories) and live interfaces.
//! Nothing after this module knows files from interfaces.

pub mod file;
#[cfg(feature = "live")]
pub mod live;

use crate::time::Ts;

/// Link-layer header type, as in pcap's LINKTYPE_* numbers.
pub type Linktype = u32;

pub const LINKTYPE_NULL: Linktype = 0;
pub const LINKTYPE_ETHERNET: Linktype = 1;
pub const LINKTYPE_RAW: Linktype = 101;
pub const LINKTYPE_LOOP: Linktype = 108;
pub const LINKTYPE_LINUX_SLL: Linktype = 113;
pub const LINKTYPE_IPV4: Linktype = 228;
pub const LINKTYPE_IPV6: Linktype = 229;
pub const LINKTYPE_LINUX_SLL2: Linktype = 276;

/// One captured frame.
#[derive(Clone, Debug)]
pub struct Packet {
    pub ts: Ts,
    pub linktype: Linktype,
    /// Length on the wire (may exceed `data.len()` when the snaplen cut it).
    pub orig_len: u32,
    pub data: Vec<u8>,
}

impl Packet {
    /// An empty packet whose buffer readers refill (see [`file::CaptureReader::next_packet`]).
    pub fn empty() -> Packet {
        Packet {
            ts: Ts(0),
            linktype: LINKTYPE_ETHERNET,
            orig_len: 0,
            data: Vec::new(),
        }
    }

    /// Becomes a copy of `f` (the buffer is reused).
    pub fn copy_from(&mut self, f: Frame<'_>) {
        self.ts = f.ts;
        self.linktype = f.linktype;
        self.orig_len = f.orig_len;
        self.data.clear();
        self.data.extend_from_slice(f.data);
    }

    /// The frame, borrowed.
    pub fn frame(&self) -> Frame<'_> {
        Frame {
            ts: self.ts,
            linktype: self.linktype,
            orig_len: self.orig_len,
            data: &self.data,
        }
    }
}

/// One captured frame, borrowed from wherever it lies (a reader's block buffer, a [`Packet`]):
/// what decoding needs, without copying the bytes.
#[derive(Clone, Copy, Debug)]
pub struct Frame<'a> {
    pub ts: Ts,
    pub linktype: Linktype,
    /// Length on the wire (may exceed `data.len()` when the snaplen cut it).
    pub orig_len: u32,
    pub data: &'a [u8],
}
