//! Which part of an SMB2 message must be buffered before its data can stream.
//!
//! The framer buffers a message's first bytes and asks [`plan_stream`] what they say: walk the
//! compound chain (NextCommand) to the last command; if that is a WRITE request or a READ
//! response, everything before its data is the prefix to buffer (the earlier commands whole, the
//! last one's header and fixed part) and its data can go to the file tracker or pipe as it
//! arrives. A pure function over borrowed bytes, called again as the prefix grows; it never asks
//! for more than the message holds, nor for earlier commands past `max_head` bytes.

use super::records::*;
use crate::wire::parsed;

/// What a message's first bytes say about streaming it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Plan {
    /// The first `n` bytes are needed to decide (never more than the message length).
    Need(usize),
    /// Not a streamable shape (or a malformed chain): read the message whole, or skip it.
    Whole,
    /// The last command is a WRITE request or READ response whose data may stream.
    Stream(StreamPlan),
}

/// Where the streamable command and its data are in the message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StreamPlan {
    /// Offset of the last command's header; 0 for a message that is not a compound. The
    /// commands before it are whole in `..last`.
    pub last: usize,
    /// WRITE or READ.
    pub command: Command,
    /// Where the data starts, from the message start: `last` + the command's DataOffset, which
    /// may lie (point into the header, or past the message end).
    pub data_at: usize,
    /// The declared data length (may exceed what the message holds).
    pub length: u32,
}

/// Plans a message of `msg_len` bytes from its first bytes `prefix`. `max_head` bounds the
/// commands before the last one (0: compounds are not streamed); `max_commands` bounds the chain.
pub fn plan_stream(prefix: &[u8], msg_len: usize, max_head: usize, max_commands: usize) -> Plan {
    let mut at = 0usize;
    let mut seen = 0usize;
    loop {
        if at.saturating_add(SMB2_HEADER_LEN) > msg_len {
            return Plan::Whole;
        }
        // Enough for the header and any fixed part looked at below, within the message.
        let want = at.saturating_add(WRITE_REQUEST_FIXED).min(msg_len);
        if prefix.len() < want {
            return Plan::Need(want);
        }
        let Some(cmd) = prefix.get(at..) else {
            return Plan::Whole;
        };
        let Some(h) = parsed(parse_header(cmd)) else {
            return Plan::Whole;
        };
        seen += 1;
        if h.next_command != 0 {
            let next = h.next_command as usize;
            // The same rules as `split_compound`; a chain that ends by pointing at the message
            // end (rather than with 0) is left to the whole-message path.
            let Some(to) = at.checked_add(next) else {
                return Plan::Whole;
            };
            if next < SMB2_HEADER_LEN
                || next % 8 != 0
                || to >= msg_len
                || seen >= max_commands
                || to > max_head
            {
                return Plan::Whole;
            }
            at = to;
            continue;
        }
        return match (h.command, h.is_response()) {
            (WRITE, false) => match parsed(parse_write_request(cmd)) {
                Some(w) => Plan::Stream(StreamPlan {
                    last: at,
                    command: WRITE,
                    data_at: at + usize::from(w.data_offset),
                    length: w.length,
                }),
                None => Plan::Whole,
            },
            // Responses are not streamed out of compounds: their requests' context is elsewhere.
            (READ, true) if at == 0 => match parsed(parse_read_response(cmd)) {
                Some(r) => Plan::Stream(StreamPlan {
                    last: 0,
                    command: READ,
                    data_at: usize::from(r.data_offset),
                    length: r.data_length,
                }),
                None => Plan::Whole,
            },
            _ => Plan::Whole,
        };
    }
}

#[cfg(test)]
mod tests {
    use super::super::records::tests::*;
    use super::*;

    const BIG: usize = 1 << 20;

    #[test]
    fn single_write_needs_its_fixed_part() {
        let w = write_request(1, 2, 3, 4, 0, &[7u8; 5000], 0);
        for n in 0..WRITE_REQUEST_FIXED {
            assert_eq!(
                plan_stream(&w[..n], w.len(), 0, 64),
                Plan::Need(WRITE_REQUEST_FIXED)
            );
        }
        let want = Plan::Stream(StreamPlan {
            last: 0,
            command: WRITE,
            data_at: 112,
            length: 5000,
        });
        assert_eq!(plan_stream(&w[..WRITE_REQUEST_FIXED], w.len(), 0, 64), want);
        assert_eq!(plan_stream(&w, w.len(), 0, 64), want);
    }

    #[test]
    fn lying_data_offset_and_length_are_reported_as_they_are() {
        let mut w = write_request(1, 2, 3, 4, 0, &[7u8; 100], 0);
        w[66..68].copy_from_slice(&8u16.to_le_bytes()); // into the header
        w[68..72].copy_from_slice(&u32::MAX.to_le_bytes());
        let Plan::Stream(p) = plan_stream(&w, 1 << 20, 0, 64) else {
            panic!()
        };
        assert_eq!((p.data_at, p.length), (8, u32::MAX));
        w[66..68].copy_from_slice(&u16::MAX.to_le_bytes()); // past the message
        let Plan::Stream(p) = plan_stream(&w, w.len(), 0, 64) else {
            panic!()
        };
        assert_eq!(p.data_at, 65535);
    }

    #[test]
    fn compound_ending_in_a_write() {
        let create = create_request(1, 2, 3, "a.exe", 0, 0);
        let m = compound(&[
            create.clone(),
            write_request(
                2,
                u64::MAX,
                u32::MAX,
                FILE_ID_RELATED,
                0,
                &[1u8; 300],
                FLAG_RELATED,
            ),
        ]);
        let last = create.len().div_ceil(8) * 8;
        // compounds are not streamed without room for their head
        assert_eq!(plan_stream(&m, BIG, 0, 64), Plan::Whole);
        assert_eq!(plan_stream(&m, BIG, last - 8, 64), Plan::Whole);
        assert_eq!(
            plan_stream(&m[..10], BIG, BIG, 64),
            Plan::Need(WRITE_REQUEST_FIXED)
        );
        assert_eq!(
            plan_stream(&m[..last], BIG, BIG, 64),
            Plan::Need(last + WRITE_REQUEST_FIXED)
        );
        let want = Plan::Stream(StreamPlan {
            last,
            command: WRITE,
            data_at: last + 112,
            length: 300,
        });
        assert_eq!(
            plan_stream(&m[..last + WRITE_REQUEST_FIXED], BIG, BIG, 64),
            want
        );
        // too many commands
        assert_eq!(plan_stream(&m, BIG, BIG, 1), Plan::Whole);
    }

    #[test]
    fn bad_chains_and_other_commands_are_whole() {
        let create = create_request(1, 2, 3, "a.exe", 0, 0);
        let close = close_request(2, 2, 3, 5, 0);
        let m = compound(&[create.clone(), close]);
        assert_eq!(plan_stream(&m, m.len(), BIG, 64), Plan::Whole);
        for next in [8u32, 61, 1 << 30, u32::MAX] {
            let mut b = m.clone();
            b[20..24].copy_from_slice(&next.to_le_bytes());
            assert_eq!(plan_stream(&b, b.len(), BIG, 64), Plan::Whole, "{next}");
        }
        // NextCommand at exactly the message end
        let mut b = m.clone();
        let n = b.len() as u32;
        b[20..24].copy_from_slice(&n.to_le_bytes());
        assert_eq!(plan_stream(&b, b.len(), BIG, 64), Plan::Whole);
        assert_eq!(plan_stream(b"\xfeSMB", 4, BIG, 64), Plan::Whole);
        assert_eq!(plan_stream(&[0u8; 200], 200, BIG, 64), Plan::Whole);
        // a write response, a read request, a read response inside a compound
        assert_eq!(
            plan_stream(&simple_response(WRITE, 1, 2, 3, 0, 0, 16), 80, 0, 64),
            Plan::Whole
        );
        assert_eq!(
            plan_stream(&read_request(1, 2, 3, 4, 0, 9), 113, 0, 64),
            Plan::Whole
        );
        let r = read_response(1, 2, 3, &[5u8; 50]);
        assert_eq!(
            plan_stream(&r, r.len(), 0, 64),
            Plan::Stream(StreamPlan {
                last: 0,
                command: READ,
                data_at: 80,
                length: 50
            })
        );
        let rc = compound(&[simple_response(CLOSE, 1, 2, 3, 0, 0, 60), r]);
        assert_eq!(plan_stream(&rc, rc.len(), BIG, 64), Plan::Whole);
    }

    #[test]
    fn every_prefix_of_hostile_bytes_is_safe() {
        let mut m = compound(&[
            create_request(1, 2, 3, "a.exe", 0, 0),
            write_request(2, 2, 3, 4, 0, &[1u8; 50], 0),
        ]);
        let mut seed = 7u32;
        for round in 0..300 {
            for n in 0..m.len() {
                match plan_stream(&m[..n], m.len(), BIG, 64) {
                    Plan::Need(k) => assert!(k > n && k <= m.len()),
                    Plan::Stream(p) => assert!(
                        p.last
                            + if p.command == WRITE {
                                WRITE_REQUEST_FIXED
                            } else {
                                READ_RESPONSE_FIXED
                            }
                            <= n
                    ),
                    Plan::Whole => {}
                }
            }
            seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
            let i = (seed as usize >> 4) % m.len();
            m[i] = (seed >> 20) as u8 ^ round as u8;
        }
    }
}
