//! The one stable hash: 64-bit FNV-1a. Stable across platforms, builds and runs (std's hasher is
//! not), so whatever is derived from it (connection uids, alert ids, worker choice) is the same on
//! every machine. Not for tables whose keys come off the wire: see [`super::maps`].

const OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
const PRIME: u64 = 0x0000_0100_0000_01b3;

/// FNV-1a, fed in pieces.
#[derive(Clone, Copy, Debug)]
pub struct StableHash(u64);

impl Default for StableHash {
    fn default() -> Self {
        StableHash(OFFSET_BASIS)
    }
}

impl StableHash {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn write(&mut self, bytes: &[u8]) -> &mut Self {
        for &b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(PRIME);
        }
        self
    }

    pub fn finish(&self) -> u64 {
        self.0
    }

    /// The hash of `parts`, each followed by a 0xFF separator (so ["ab", "c"] and ["a", "bc"]
    /// differ: 0xFF never ends a UTF-8 string and is written after every part).
    pub fn of_parts(parts: &[&[u8]]) -> u64 {
        let mut h = StableHash::new();
        for p in parts {
            h.write(p).write(&[0xff]);
        }
        h.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_fnv1a_values() {
        // Reference values of 64-bit FNV-1a (Fowler/Noll/Vo test vectors).
        assert_eq!(StableHash::new().finish(), 0xcbf2_9ce4_8422_2325);
        assert_eq!(
            StableHash::new().write(b"a").finish(),
            0xaf63_dc4c_8601_ec8c
        );
        assert_eq!(
            StableHash::new().write(b"foobar").finish(),
            0x8594_4171_f739_67e8
        );
        assert_ne!(
            StableHash::of_parts(&[b"ab", b"c"]),
            StableHash::of_parts(&[b"a", b"bc"])
        );
    }
}
