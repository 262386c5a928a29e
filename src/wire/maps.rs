//! The one hash-map policy for keys that come off the wire, and one way to give memory back.
//!
//! Why not FxHash for these: SessionId, TreeId, FileId, addresses and ports are attacker-chosen,
//! and FxHash is a fixed multiply: anyone can compute keys that all land in one bucket, turning
//! every lookup into a scan of the whole table. Why not std's SipHash: these tables are looked up
//! several times per message and SipHash showed in the profile (~1.5% of the SMB2 bench).
//! foldhash's `RandomState` is seeded per process and per map, so keys cannot be aimed at a bucket
//! without that state (the sensor is passive: no hash, order or timing of these tables is
//! observable from the wire); its authors call it minimally DoS-resistant, not cryptographic, and
//! every table is capped besides, so even a collision found by luck costs a bounded scan.
//!
//! Rule: a map or set whose keys any packet can choose is a [`KeyedMap`] / [`KeyedSet`]. An
//! unkeyed fast hash (FxHash) only for keys the sensor itself makes (its own indices, rule ids).

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, Hash};

/// The per-process, per-map random seed.
pub type KeyedState = foldhash::fast::RandomState;
/// A `HashMap` keyed with a per-process, per-map random seed.
pub type KeyedMap<K, V> = HashMap<K, V, KeyedState>;
/// A `HashSet` keyed the same way.
pub type KeyedSet<K> = HashSet<K, KeyedState>;

/// Below this capacity a map is never shrunk: small maps cost little and would churn.
pub const SHRINK_MIN_CAPACITY: usize = 64;

/// A hash table keeps its largest size after entries leave; after a burst (a scan of many hosts,
/// a flood of sessions) give the memory back once the table is mostly empty (under a quarter
/// full), so a long run's footprint follows the current traffic rather than its peak. Keeps room
/// for twice the current entries so a table that hovers near the threshold does not churn.
pub fn shrink_if_sparse<K: Hash + Eq, V, S: BuildHasher>(m: &mut HashMap<K, V, S>) {
    if m.capacity() > SHRINK_MIN_CAPACITY && m.len() * 4 < m.capacity() {
        m.shrink_to((m.len() * 2).max(SHRINK_MIN_CAPACITY));
    }
}

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
        let (a, b) = (KeyedState::default(), KeyedState::default());
        assert_ne!(a.hash_one(42u64), b.hash_one(42u64));
    }

    #[test]
    fn sparse_maps_give_memory_back() {
        let mut m: KeyedMap<u32, u32> = KeyedMap::default();
        m.extend((0..10_000).map(|i| (i, i)));
        let big = m.capacity();
        m.retain(|k, _| *k < 100);
        shrink_if_sparse(&mut m);
        assert!(m.capacity() < big / 8, "{} of {big}", m.capacity());
        assert_eq!(m.len(), 100);
        let mut small: KeyedMap<u32, u32> = KeyedMap::default();
        small.insert(1, 1);
        let c = small.capacity();
        shrink_if_sparse(&mut small);
        assert_eq!(small.capacity(), c);
    }
}
