//! The hash of the per-connection SMB tables (sessions, trees, handles, CREATE aliases): keyed
//! per process, cheap on the integer keys those tables use.
//!
//! Why not FxHash (as the flow table uses): SessionId, TreeId and FileId come off the wire, so
//! they are attacker-chosen, and FxHash is a fixed multiply: anyone can compute keys that all
//! land in one bucket, turning every lookup into a scan of the whole table (up to
//! [`super::tables::MAX_OPEN_FILES`] entries per message). Why not std's SipHash: these tables
//! are looked up several times per SMB message and SipHash's byte-stream `write` showed in the
//! profile. This is the folded-multiply construction of foldhash/ahash (no crate added: neither
//! is in Cargo.lock): each word is mixed as `fold(acc ^ word, k1)`, with `acc` starting at a
//! secret `k0`, where `fold` multiplies to 128 bits and xors the halves. Both keys are drawn
//! once per process from std's `RandomState` (OS randomness) and never leave it; without them
//! an attacker cannot aim keys at a bucket (the sensor is passive: no hash, order or timing of
//! these tables is observable from the wire). It is not a cryptographic hash; the tables are
//! also capped, so even a collision found by luck costs a bounded scan.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::sync::OnceLock;

/// A `HashMap` with the keyed hash.
pub type KeyedMap<K, V> = HashMap<K, V, KeyedState>;

/// Builds [`KeyedHasher`]s with the process's secret keys.
#[derive(Clone, Copy, Debug)]
pub struct KeyedState {
    k0: u64,
    k1: u64,
}

impl Default for KeyedState {
    fn default() -> KeyedState {
        static KEYS: OnceLock<(u64, u64)> = OnceLock::new();
        let &(k0, k1) = KEYS.get_or_init(|| {
            let r = std::collections::hash_map::RandomState::new();
            // An odd multiplier keeps the low word of every product dependent on the input.
            (r.hash_one(0x6b65_7930_u64), r.hash_one(0x6b65_7931_u64) | 1)
        });
        KeyedState { k0, k1 }
    }
}

impl BuildHasher for KeyedState {
    type Hasher = KeyedHasher;
    fn build_hasher(&self) -> KeyedHasher {
        KeyedHasher { acc: self.k0, k1: self.k1 }
    }
}

/// 64×64 → 128-bit product, halves folded.
#[inline]
fn fold(a: u64, b: u64) -> u64 {
    let p = u128::from(a) * u128::from(b);
    (p as u64) ^ ((p >> 64) as u64)
}

pub struct KeyedHasher {
    acc: u64,
    k1: u64,
}

impl Hasher for KeyedHasher {
    #[inline]
    fn write_u64(&mut self, x: u64) {
        self.acc = fold(self.acc ^ x, self.k1);
    }
    #[inline]
    fn write_u128(&mut self, x: u128) {
        self.write_u64(x as u64);
        self.write_u64((x >> 64) as u64);
    }
    #[inline]
    fn write_u32(&mut self, x: u32) {
        self.write_u64(u64::from(x));
    }
    #[inline]
    fn write_u16(&mut self, x: u16) {
        self.write_u64(u64::from(x));
    }
    #[inline]
    fn write_u8(&mut self, x: u8) {
        self.write_u64(u64::from(x));
    }
    #[inline]
    fn write_usize(&mut self, x: usize) {
        self.write_u64(x as u64);
    }
    #[inline]
    fn write_isize(&mut self, x: isize) {
        self.write_u64(x as u64);
    }
    /// Any other key: 8-byte words, then the length (so "a" and "a\0" differ).
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut w = [0u8; 8];
            w[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(w));
        }
        self.write_u64(bytes.len() as u64);
    }
    #[inline]
    fn finish(&self) -> u64 {
        // One more round so the last word's mixing reaches the top bits hashbrown tags with.
        fold(self.acc, self.k1.rotate_left(32) | 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn hash<T: std::hash::Hash>(s: &KeyedState, x: T) -> u64 {
        s.hash_one(x)
    }

    #[test]
    fn equal_keys_equal_hashes_and_a_map_works() {
        let s = KeyedState::default();
        assert_eq!(hash(&s, 42u64), hash(&s, 42u64));
        assert_eq!(hash(&s, 42u64), hash(&KeyedState::default(), 42u64), "one key pair per process");
        assert_ne!(hash(&s, 42u64), hash(&s, 43u64));
        assert_ne!(hash(&s, b"a".as_slice()), hash(&s, b"a\0".as_slice()));
        let mut m: KeyedMap<u128, u32> = KeyedMap::default();
        for i in 0..5000u128 {
            m.insert(i << 64 | i, i as u32);
        }
        assert!((0..5000u128).all(|i| m.get(&(i << 64 | i)) == Some(&(i as u32))));
    }

    /// Structured key sets an attacker would try (differing only in high bits, multiples of a
    /// power of two, FxHash's collision set) spread over buckets and tags like random ones.
    #[test]
    fn structured_keys_spread() {
        const FX_K: u64 = 0xf135_7aea_2e62_a9c5;
        // The inverse of FxHash's multiplier mod 2^64 (Newton's iteration).
        let mut inv: u64 = 1;
        for _ in 0..6 {
            inv = inv.wrapping_mul(2u64.wrapping_sub(FX_K.wrapping_mul(inv)));
        }
        assert_eq!(FX_K.wrapping_mul(inv), 1);
        let s = KeyedState::default();
        let sets: [Vec<u128>; 4] = [
            (0..1024u128).map(|i| i << 64).collect(),
            (0..1024u128).map(|i| i << 100).collect(),
            (0..1024u128).map(|i| i << 20).collect(),
            // x·K = i: consecutive after FxHash's multiply, so one bucket region for it.
            (0..1024u64).map(|i| u128::from(i.wrapping_mul(inv))).collect(),
        ];
        for (n, set) in sets.iter().enumerate() {
            let low: HashSet<u64> = set.iter().map(|&k| hash(&s, k) & 1023).collect();
            let top: HashSet<u64> = set.iter().map(|&k| hash(&s, k) >> 57).collect();
            // 1024 random keys into 1024 buckets fill about 647; into 128 tags, all of them.
            assert!(low.len() > 550, "set {n}: {} buckets", low.len());
            assert!(top.len() > 120, "set {n}: {} tags", top.len());
        }
    }
}
