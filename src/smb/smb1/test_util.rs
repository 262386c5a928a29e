//! Test helpers: hand-built SMB1 messages and capture bytes (tshark `tcp.payload` hex).

use super::records::{FLAGS2_NT_STATUS, FLAGS2_UNICODE, FLAGS_REPLY};

/// Decodes hex (whitespace ignored).
pub fn unhex(s: &str) -> Vec<u8> {
    let digits: Vec<u8> = s.bytes().filter(|b| b.is_ascii_hexdigit()).collect();
    digits
        .chunks_exact(2)
        .map(|p| u8::from_str_radix(std::str::from_utf8(p).unwrap(), 16).unwrap())
        .collect()
}

/// One SMB1 message from a TCP payload that starts with the 4-byte NetBIOS header.
pub fn capture_msg(hex: &str) -> Vec<u8> {
    let b = unhex(hex);
    assert_eq!(b[0], 0, "NetBIOS session message");
    let len = (usize::from(b[1]) << 16) | (usize::from(b[2]) << 8) | usize::from(b[3]);
    assert!(b.len() >= 4 + len.min(b.len() - 4));
    b[4..(4 + len).min(b.len())].to_vec()
}

/// UTF-16LE bytes of `s` with a terminating NUL.
pub fn utf16z(s: &str) -> Vec<u8> {
    let mut v: Vec<u8> = s.encode_utf16().flat_map(|u| u.to_le_bytes()).collect();
    v.extend_from_slice(&[0, 0]);
    v
}

pub struct MsgBuilder {
    hdr: [u8; 32],
    words: Vec<u8>,
    bytes: Vec<u8>,
}

impl MsgBuilder {
    pub fn request(command: u8) -> MsgBuilder {
        let mut hdr = [0u8; 32];
        hdr[..4].copy_from_slice(&[0xFF, b'S', b'M', b'B']);
        hdr[4] = command;
        hdr[10..12].copy_from_slice(&FLAGS2_NT_STATUS.to_le_bytes());
        MsgBuilder {
            hdr,
            words: Vec::new(),
            bytes: Vec::new(),
        }
    }
    pub fn response(command: u8) -> MsgBuilder {
        let mut b = MsgBuilder::request(command);
        b.hdr[9] |= FLAGS_REPLY;
        b
    }
    pub fn ids(mut self, tid: u16, uid: u16, pid: u32, mid: u16) -> MsgBuilder {
        self.hdr[12..14].copy_from_slice(&((pid >> 16) as u16).to_le_bytes());
        self.hdr[24..26].copy_from_slice(&tid.to_le_bytes());
        self.hdr[26..28].copy_from_slice(&(pid as u16).to_le_bytes());
        self.hdr[28..30].copy_from_slice(&uid.to_le_bytes());
        self.hdr[30..32].copy_from_slice(&mid.to_le_bytes());
        self
    }
    /// Sets FLAGS2 exactly (pass FLAGS2_NT_STATUS too if wanted).
    pub fn flags2(mut self, f: u16) -> MsgBuilder {
        self.hdr[10..12].copy_from_slice(&f.to_le_bytes());
        self
    }
    pub fn unicode(self) -> MsgBuilder {
        self.flags2(FLAGS2_NT_STATUS | FLAGS2_UNICODE)
    }
    pub fn dos_status(mut self, class: u8, code: u16) -> MsgBuilder {
        let f2 = u16::from_le_bytes([self.hdr[10], self.hdr[11]]) & !FLAGS2_NT_STATUS;
        self.hdr[10..12].copy_from_slice(&f2.to_le_bytes());
        self.hdr[5] = class;
        self.hdr[6] = 0;
        self.hdr[7..9].copy_from_slice(&code.to_le_bytes());
        self
    }
    pub fn nt_status(mut self, s: u32) -> MsgBuilder {
        self.hdr[5..9].copy_from_slice(&s.to_le_bytes());
        self
    }
    pub fn words(mut self, w: &[u8]) -> MsgBuilder {
        assert!(w.len() % 2 == 0);
        self.words = w.to_vec();
        self
    }
    pub fn bytes(mut self, b: &[u8]) -> MsgBuilder {
        self.bytes = b.to_vec();
        self
    }
    pub fn build(self) -> Vec<u8> {
        let mut m = self.hdr.to_vec();
        m.push((self.words.len() / 2) as u8);
        m.extend_from_slice(&self.words);
        m.extend_from_slice(&(self.bytes.len() as u16).to_le_bytes());
        m.extend_from_slice(&self.bytes);
        m
    }
}

/// Little-endian word builder for parameter blocks.
#[derive(Default)]
pub struct W(pub Vec<u8>);

impl W {
    pub fn new() -> W {
        W(Vec::new())
    }
    pub fn andx(self, next: u8, off: u16) -> W {
        self.u8(next).u8(0).u16(off)
    }
    pub fn u8(mut self, v: u8) -> W {
        self.0.push(v);
        self
    }
    pub fn u16(mut self, v: u16) -> W {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    pub fn u32(mut self, v: u32) -> W {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    pub fn u64(mut self, v: u64) -> W {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    pub fn raw(mut self, b: &[u8]) -> W {
        self.0.extend_from_slice(b);
        self
    }
    pub fn done(self) -> Vec<u8> {
        self.0
    }
}

/// The header and first block of a message (tests of single-command parsers).
pub fn first_block(m: &[u8]) -> (super::records::Header, super::records::andx::Block<'_>) {
    let h = super::records::Header::parse(m).unwrap();
    let b = super::records::andx::AndxChain::new(m, &h)
        .next()
        .unwrap()
        .unwrap();
    (h, b)
}
