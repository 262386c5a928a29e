//! Little-endian reads that cannot panic: a view checks its lengths once, then reads through
//! these, which answer 0 for bytes that are not there (never reached after the check).

#[inline]
pub(crate) fn u8_at(b: &[u8], off: usize) -> u8 {
    b.get(off).copied().unwrap_or(0)
}

#[inline]
pub(crate) fn u16_at(b: &[u8], off: usize) -> u16 {
    match b.get(off..off.saturating_add(2)) {
        Some(&[a, c]) => u16::from_le_bytes([a, c]),
        _ => 0,
    }
}

#[inline]
pub(crate) fn u32_at(b: &[u8], off: usize) -> u32 {
    match b.get(off..off.saturating_add(4)) {
        Some(&[a, c, d, e]) => u32::from_le_bytes([a, c, d, e]),
        _ => 0,
    }
}

#[inline]
pub(crate) fn u64_at(b: &[u8], off: usize) -> u64 {
    u64::from(u32_at(b, off)) | (u64::from(u32_at(b, off.saturating_add(4))) << 32)
}

/// `b[off..off+len]` clipped to what exists.
#[inline]
pub(crate) fn slice_clipped(b: &[u8], off: usize, len: usize) -> &[u8] {
    let start = off.min(b.len());
    let end = off.saturating_add(len).min(b.len());
    b.get(start..end).unwrap_or(&[])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_are_little_endian_and_total() {
        let b = [0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08];
        assert_eq!(u16_at(&b, 0), 0x0201);
        assert_eq!(u32_at(&b, 4), 0x0807_0605);
        assert_eq!(u64_at(&b, 0), 0x0807_0605_0403_0201);
        assert_eq!(u16_at(&b, 7), 0);
        assert_eq!(u32_at(&b, usize::MAX), 0);
        assert_eq!(slice_clipped(&b, 6, 10), &[0x07, 0x08]);
        assert_eq!(slice_clipped(&b, 100, 10), &[] as &[u8]);
    }
}
