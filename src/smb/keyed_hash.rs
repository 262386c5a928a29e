//! The hash of the per-connection SMB tables (sessions, trees, handles, CREATE aliases).
//!
//! Why not FxHash (as the flow table uses): SessionId, TreeId and FileId come off the wire, so
//! they are attacker-chosen, and FxHash is a fixed multiply: anyone can compute keys that all
//! land in one bucket, turning every lookup into a scan of the whole table (up to
//! [`super::tables::MAX_OPEN_FILES`] entries per message). Why not std's SipHash: these tables
//! are looked up several times per SMB message and SipHash showed in the profile (~1.5% of the
//! bench). foldhash's `RandomState` is seeded per process and per map, so keys cannot be aimed
//! at a bucket without that state (the sensor is passive: no hash, order or timing of these
//! tables is observable from the wire); its authors call it minimally DoS-resistant, not
//! cryptographic, and the tables are capped besides, so even a collision found by luck costs a
//! bounded scan.

use std::collections::HashMap;

/// A `HashMap` keyed with a per-process, per-map random seed.
pub type KeyedMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_with_wire_keys_work_and_differ_in_seed() {
        let mut m: KeyedMap<u128, u32> = KeyedMap::default();
        for i in 0..10_000u128 {
            m.insert(i << 64 | 0xffff_ffff, i as u32);
        }
        assert_eq!(m.len(), 10_000);
        assert!((0..10_000u128).all(|i| m.get(&(i << 64 | 0xffff_ffff)) == Some(&(i as u32))));
        // Two maps hash the same key differently: a collision set found against one map (or one
        // run) does not carry over.
        use std::hash::BuildHasher;
        let (a, b) = (
            foldhash::fast::RandomState::default(),
            foldhash::fast::RandomState::default(),
        );
        assert_ne!(a.hash_one(42u64), b.hash_one(42u64));
    }
}
