//! Little-endian (and DCE-RPC's either-endian) integers as nom parsers over `&[u8]`: the same
//! signatures, results and errors as `nom::number::complete`, so record parsers compose them with
//! nom's combinators exactly as before.
//!
//! Why not nom's own: nom 8 reads every integer through its generic `Input` trait, one byte at a
//! time (`iter_elements().take(n)` with a shift and an add per byte), and LLVM does not turn that
//! back into one load. On the 300 MB bench slice (cachegrind, `read --workers 1`), the SMB2 header
//! alone cost 75 instructions a call, 23.5 M in all; these fixed-size loads (`split_first_chunk`
//! and `from_le_bytes`) are a bounds check and one move each. The figures are in docs/PERF.md
//! ("Session 6"); the tests below check every width against nom's on random bytes.

use nom::error::{make_error, ErrorKind, ParseError};
use nom::number::Endianness;
use nom::{Err, IResult};

/// `N` bytes off the front of `i`, or nom's error for a short input (`ErrorKind::Eof`).
#[inline(always)]
fn chunk<'a, const N: usize, E: ParseError<&'a [u8]>>(
    i: &'a [u8],
) -> IResult<&'a [u8], [u8; N], E> {
    match i.split_first_chunk::<N>() {
        Some((c, rest)) => Ok((rest, *c)),
        None => Err(Err::Error(make_error(i, ErrorKind::Eof))),
    }
}

macro_rules! le {
    ($($name:ident: $t:ty),*) => {$(
        #[doc = concat!("`nom::number::complete::", stringify!($name), "` over `&[u8]`.")]
        #[inline]
        pub fn $name<'a, E: ParseError<&'a [u8]>>(i: &'a [u8]) -> IResult<&'a [u8], $t, E> {
            let (rest, c) = chunk::<{ std::mem::size_of::<$t>() }, E>(i)?;
            Ok((rest, <$t>::from_le_bytes(c)))
        }
    )*};
}
le!(le_u8: u8, le_u16: u16, le_u32: u32, le_u64: u64, le_u128: u128);

macro_rules! either {
    ($($name:ident: $t:ty),*) => {$(
        #[doc = concat!("`nom::number::complete::", stringify!($name), "(endian)` over `&[u8]`")]
        #[doc = "(DCE-RPC's data representation picks the byte order per PDU)."]
        #[inline]
        pub fn $name<'a, E: ParseError<&'a [u8]>>(
            endian: Endianness,
        ) -> impl Fn(&'a [u8]) -> IResult<&'a [u8], $t, E> {
            move |i| {
                let (rest, c) = chunk::<{ std::mem::size_of::<$t>() }, E>(i)?;
                Ok((
                    rest,
                    match endian {
                        Endianness::Big => <$t>::from_be_bytes(c),
                        Endianness::Little => <$t>::from_le_bytes(c),
                        Endianness::Native => <$t>::from_ne_bytes(c),
                    },
                ))
            }
        }
    )*};
}
either!(u16: u16, u32: u32, u64: u64);

#[cfg(test)]
mod tests {
    use super::*;
    use nom::number::complete as nom_num;
    use nom::Parser;

    type R<'a, T> = IResult<&'a [u8], T>;

    /// Every width and every length from 0 to 20 of pseudo-random bytes: the same value, rest and
    /// error as nom's parser.
    #[test]
    fn every_width_agrees_with_nom_on_random_bytes() {
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        for round in 0..500 {
            let bytes: Vec<u8> = (0..20)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                })
                .collect();
            for n in 0..=bytes.len() {
                let b = &bytes[..n];
                assert_eq!(
                    le_u8::<nom::error::Error<_>>(b),
                    nom_num::le_u8(b),
                    "{round}"
                );
                assert_eq!(le_u16(b) as R<u16>, nom_num::le_u16(b));
                assert_eq!(le_u32(b) as R<u32>, nom_num::le_u32(b));
                assert_eq!(le_u64(b) as R<u64>, nom_num::le_u64(b));
                assert_eq!(le_u128(b) as R<u128>, nom_num::le_u128(b));
                for e in [Endianness::Big, Endianness::Little, Endianness::Native] {
                    assert_eq!(u16(e)(b) as R<u16>, nom_num::u16(e).parse(b));
                    assert_eq!(u32(e)(b) as R<u32>, nom_num::u32(e).parse(b));
                    assert_eq!(u64(e)(b) as R<u64>, nom_num::u64(e).parse(b));
                }
            }
        }
    }
}
