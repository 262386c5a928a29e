//! Data transfer: WRITE_ANDX (0x2F), READ_ANDX (0x2E) and CLOSE (0x04).
//!
//! Large writes (CAP_LARGE_WRITEX) carry up to 128 KiB (more with some servers) under a 16-bit
//! ByteCount: the length is DataLengthHigh:DataLength and the data sits at DataOffset from the
//! header start. The views give (offset, length) so that the state machine can pass payload
//! through, possibly before the whole message has arrived, without copying.

use super::andx::Block;
use super::{andx_header, join_u16, response_words, words, Accept, Smb1Error};
use crate::wire::clipped;
use crate::wire::num::{le_u16, le_u32};
use nom::bytes::complete::take;
use nom::combinator::cond;

/// WriteMode bits.
pub const WRITE_THROUGH: u16 = 0x0001;
pub const WRITE_RETURN_REMAINING: u16 = 0x0002;
pub const WRITE_RAW_MODE: u16 = 0x0004;
pub const WRITE_MESSAGE_START: u16 = 0x0008;

/// READ_ANDX response and WRITE_ANDX request data: found by DataOffset (from the header
/// start), DataLengthHigh:DataLength long, possibly past ByteCount's bytes.
pub trait LargeData {
    fn data_offset(&self) -> usize;
    /// (DataLengthHigh, DataLength).
    fn data_len_parts(&self) -> (u16, u16);

    /// DataLengthHigh:DataLength.
    fn data_len(&self) -> u32 {
        let (high, low) = self.data_len_parts();
        join_u16(high, low)
    }

    /// Offset just past the data (from the header start).
    fn data_end(&self) -> usize {
        self.data_offset().saturating_add(self.data_len() as usize)
    }

    /// The data present in `msg` (all of it once the message is complete).
    fn data<'a>(&self, msg: &'a [u8]) -> &'a [u8] {
        clipped(msg, self.data_offset(), self.data_len() as usize)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WriteAndxRequest {
    pub fid: u16,
    /// Offset in the file (with OffsetHigh when WordCount is 14).
    pub offset: u64,
    pub timeout: u32,
    pub write_mode: u16,
    pub remaining: u16,
    pub data_len_low: u16,
    pub data_len_high: u16,
    /// Data offset from the header start.
    pub data_offset: usize,
}

impl WriteAndxRequest {
    pub fn parse(block: &Block<'_>) -> Result<WriteAndxRequest, Smb1Error> {
        let fields = (
            andx_header,
            le_u16,
            le_u32,
            le_u32,
            le_u16,
            le_u16,
            le_u16,
            le_u16,
            le_u16,
            cond(block.word_count == 14, le_u32),
        );
        let (
            _,
            fid,
            offset,
            timeout,
            write_mode,
            remaining,
            data_len_high,
            data_len_low,
            data_offset,
            offset_high,
        ) = words(block, Accept::OneOf(&[12, 14]), fields)?;
        let r = WriteAndxRequest {
            fid,
            offset: offset64(offset, offset_high),
            timeout,
            write_mode,
            remaining,
            data_len_high,
            data_len_low,
            data_offset: usize::from(data_offset),
        };
        data_after_words(block, r.data_offset, true)?;
        Ok(r)
    }

    /// Bytes at the start of the data that are a named-pipe message length, not pipe data:
    /// 2 when RAW_MODE and MESSAGE_START are both set (Wireshark's reading), else 0.
    pub fn pipe_length_prefix(&self) -> usize {
        if self.write_mode & (WRITE_RAW_MODE | WRITE_MESSAGE_START)
            == (WRITE_RAW_MODE | WRITE_MESSAGE_START)
        {
            2
        } else {
            0
        }
    }
}

impl LargeData for WriteAndxRequest {
    fn data_offset(&self) -> usize {
        self.data_offset
    }

    fn data_len_parts(&self) -> (u16, u16) {
        (self.data_len_high, self.data_len_low)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WriteAndxResponse {
    /// Bytes written: CountHigh:Count.
    pub count: u32,
    pub available: u16,
}

impl WriteAndxResponse {
    pub fn parse(block: &Block<'_>) -> Result<Option<WriteAndxResponse>, Smb1Error> {
        let fields = (andx_header, le_u16, le_u16, le_u16);
        let Some((_, count_low, available, count_high)) =
            response_words(block, Accept::OneOf(&[6]), fields)?
        else {
            return Ok(None);
        };
        Ok(Some(WriteAndxResponse {
            count: join_u16(count_high, count_low),
            available,
        }))
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadAndxRequest {
    pub fid: u16,
    pub offset: u64,
    pub max_count_low: u16,
    pub min_count: u16,
    /// Timeout, or (large reads) MaxCountHigh in its low 16 bits.
    pub timeout_or_max_count_high: u32,
    pub remaining: u16,
}

impl ReadAndxRequest {
    pub fn parse(block: &Block<'_>) -> Result<ReadAndxRequest, Smb1Error> {
        let fields = (
            andx_header,
            le_u16,
            le_u32,
            le_u16,
            le_u16,
            le_u32,
            le_u16,
            cond(block.word_count == 12, le_u32),
        );
        let (_, fid, offset, max_count_low, min_count, timeout_or_max_count_high, remaining, high) =
            words(block, Accept::OneOf(&[10, 12]), fields)?;
        Ok(ReadAndxRequest {
            fid,
            offset: offset64(offset, high),
            max_count_low,
            min_count,
            timeout_or_max_count_high,
            remaining,
        })
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadAndxResponse {
    pub available: u16,
    pub data_len_low: u16,
    pub data_len_high: u16,
    /// Data offset from the header start.
    pub data_offset: usize,
}

impl ReadAndxResponse {
    pub fn parse(block: &Block<'_>) -> Result<Option<ReadAndxResponse>, Smb1Error> {
        // Available, DataCompactionMode, Reserved, DataLength, DataOffset, DataLengthHigh.
        let fields = (andx_header, le_u16, take(4usize), le_u16, le_u16, le_u16);
        let Some((_, available, _, data_len_low, data_offset, data_len_high)) =
            response_words(block, Accept::OneOf(&[12]), fields)?
        else {
            return Ok(None);
        };
        let r = ReadAndxResponse {
            available,
            data_len_low,
            data_offset: usize::from(data_offset),
            data_len_high,
        };
        data_after_words(block, r.data_offset, r.data_len() > 0)?;
        Ok(Some(r))
    }
}

impl LargeData for ReadAndxResponse {
    fn data_offset(&self) -> usize {
        self.data_offset
    }

    fn data_len_parts(&self) -> (u16, u16) {
        (self.data_len_high, self.data_len_low)
    }
}

/// CLOSE (0x04) request: the FID; the response has no body.
pub fn close_fid(block: &Block<'_>) -> Result<u16, Smb1Error> {
    words(block, Accept::OneOf(&[3]), le_u16)
}

/// A 64-bit file offset from its low half and the optional high half (the long form).
fn offset64(low: u32, high: Option<u32>) -> u64 {
    (u64::from(high.unwrap_or(0)) << 32) | u64::from(low)
}

/// READ/WRITE data is found by DataOffset, which may lie past ByteCount's bytes (large
/// writes) but never inside the header or the words.
fn data_after_words(
    block: &Block<'_>,
    data_offset: usize,
    has_data: bool,
) -> Result<(), Smb1Error> {
    if has_data && data_offset < block.bytes_offset {
        return Err(Smb1Error::OutOfBounds {
            command: block.command,
            what: "data offset inside the parameter block",
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::smb::smb1::records::cmd;
    use crate::smb::smb1::test_util::{capture_msg, first_block, unhex, MsgBuilder, W};

    /// i1_smb1_psexec frame 24: impacket writes a DCE-RPC bind to \srvsvc; tshark smb.fid
    /// 0x7cb0, smb.write.mode 0x0008, smb.data_len_low 72, smb.data_offset 63; frame 25 count 72.
    #[test]
    fn capture_pipe_write_i1() {
        let m = capture_msg("00000087ff534d422f000000001801480000000000000000000000000ccc6e1798b000000eff000000b07c00000000ff00000008004800000048003f0000000000480005000b03100000004800000001000000b810b810000000000100000000000100c84f324b7016d30112785a47bf6ee18803000000045d888aeb1cc9119fe808002b10486002000000");
        let (_, b) = first_block(&m);
        let r = WriteAndxRequest::parse(&b).unwrap();
        assert_eq!(
            (r.fid, r.write_mode, r.data_len(), r.data_offset),
            (0x7cb0, 0x0008, 72, 63)
        );
        assert_eq!(r.pipe_length_prefix(), 0);
        let data = r.data(&m);
        assert_eq!(data.len(), 72);
        // DCE-RPC bind: version 5.0, type 11, frag_length 72.
        assert_eq!(&data[..4], &[5, 0, 0x0b, 3]);
        assert_eq!(u16::from_le_bytes([data[8], data[9]]), 72);

        let m = capture_msg("0000002fff534d422f000000008803480000000000000000000000000ccc6e1798b0000006ff00000048000000000000000000");
        let (_, b) = first_block(&m);
        assert_eq!(WriteAndxResponse::parse(&b).unwrap().unwrap().count, 72);
    }

    /// i1 frames 26/28: READ_ANDX of the bind_ack; tshark smb.maxcount_low 65000, response
    /// smb.data_len_low 68 at smb.data_offset 60.
    #[test]
    fn capture_pipe_read_i1() {
        let m = capture_msg("0000003bff534d422e000000001801480000000000000000000000000ccc6e1798b000000cff000000b07c00000000e8fde8fd00000000e8fd000000000000");
        let (_, b) = first_block(&m);
        let r = ReadAndxRequest::parse(&b).unwrap();
        assert_eq!(
            (r.fid, r.offset, r.max_count_low, r.remaining),
            (0x7cb0, 0, 65000, 65000)
        );

        let m = capture_msg("00000080ff534d422e000000008803480000000000000000000000000ccc6e1798b000000cff00000000000000000044003c000000000000000000000045000005000c03100000004400000001000000b810b8105adb00000d005c706970655c73727673766300000100000000000000045d888aeb1cc9119fe808002b10486002000000");
        let (_, b) = first_block(&m);
        let r = ReadAndxResponse::parse(&b).unwrap().unwrap();
        assert_eq!((r.data_len(), r.data_offset), (68, 60));
        let data = r.data(&m);
        assert_eq!(data.len(), 68);
        assert_eq!(&data[..3], &[5, 0, 0x0c]); // bind_ack
    }

    /// i2_smb1_benign_upload: smbclient's two large writes of tool.exe (first segments only, so
    /// the data is cut): tshark smb.data_len_low 64512 + smb.data_len_high 1 at offset 0, then
    /// 9216 + 1 at smb.offset 130048; data offset 64; responses count 64512/9216 + high 1.
    #[test]
    fn capture_large_writes_i2() {
        let m = capture_msg("0001fc40ff534d422f000000001843c80000000000000000000000008af4ee176f3108000eff000000e802000000000000000000000000010000fc40000000000001fc004d5a900000000000000000000000000000000000000000000000000000000000");
        let (_, b) = first_block(&m);
        let r = WriteAndxRequest::parse(&b).unwrap();
        assert_eq!(
            (r.fid, r.offset, r.data_len(), r.data_offset),
            (0x02e8, 0, 130_048, 64)
        );
        assert_eq!(r.data_end(), 64 + 130_048);
        assert!(b.bytes_truncated());
        assert_eq!(&r.data(&m)[..2], b"MZ");

        let m = capture_msg("00012440ff534d422f000000001843c80000000000000000000000008af4ee176f3109000eff000000e80200fc01000000000000000000010000244000000000000124001caad8702d0f1586a4c101caa0d4658d9219724161e6861409929377f2f6fce0");
        let (_, b) = first_block(&m);
        let r = WriteAndxRequest::parse(&b).unwrap();
        assert_eq!((r.offset, r.data_len()), (130_048, 74_752));
        assert_eq!(r.offset + u64::from(r.data_len()), 204_800);

        let m = capture_msg("0000002fff534d422f000000008803c80000000000000000000000008af4ee176f31080006ff00000000fc0000010000000000");
        let (_, b) = first_block(&m);
        assert_eq!(
            WriteAndxResponse::parse(&b).unwrap().unwrap().count,
            130_048
        );
    }

    /// i1 frame 88: CLOSE of the uploaded binary's FID 0xe10c.
    #[test]
    fn capture_close_i1() {
        let m = capture_msg("00000029ff534d420400000000180148000000000000000000000000d4fa6e1798b00000030ce1000000000000");
        let (_, b) = first_block(&m);
        assert_eq!(close_fid(&b).unwrap(), 0xe10c);
    }

    #[test]
    fn hand_built_high_offset_and_raw_pipe_prefix() {
        let words = W::new()
            .andx(cmd::NO_ANDX, 0)
            .u16(0x4001)
            .u32(0x10)
            .u32(0)
            .u16(WRITE_RAW_MODE | WRITE_MESSAGE_START)
            .u16(0)
            .u16(0)
            .u16(6)
            .u16(32 + 1 + 28 + 2)
            .u32(0x1)
            .done();
        let m = MsgBuilder::request(cmd::WRITE_ANDX)
            .words(&words)
            .bytes(&unhex("0400 05000b03"))
            .build();
        let (_, b) = first_block(&m);
        let r = WriteAndxRequest::parse(&b).unwrap();
        assert_eq!(r.offset, 0x1_0000_0010);
        assert_eq!(r.pipe_length_prefix(), 2);
        assert_eq!(&r.data(&m)[r.pipe_length_prefix()..], &[5, 0, 0x0b, 3]);
    }

    #[test]
    fn hostile_data_offsets() {
        // Data offset pointing into the header: rejected.
        let words = W::new()
            .andx(cmd::NO_ANDX, 0)
            .u16(1)
            .u32(0)
            .u32(0)
            .u16(0)
            .u16(0)
            .u16(0)
            .u16(10)
            .u16(4)
            .done();
        let m = MsgBuilder::request(cmd::WRITE_ANDX)
            .words(&words)
            .bytes(&[0; 10])
            .build();
        let (_, b) = first_block(&m);
        assert!(WriteAndxRequest::parse(&b).is_err());
        // Data offset and length far past the message: data is clipped, not trusted.
        let words = W::new()
            .andx(cmd::NO_ANDX, 0)
            .u16(1)
            .u32(0)
            .u32(0)
            .u16(0)
            .u16(0)
            .u16(0xFFFF)
            .u16(0xFFFF)
            .u16(0xFFF0)
            .done();
        let m = MsgBuilder::request(cmd::WRITE_ANDX).words(&words).build();
        let (_, b) = first_block(&m);
        let r = WriteAndxRequest::parse(&b).unwrap();
        assert_eq!(r.data_len(), u32::MAX);
        assert!(r.data(&m).is_empty());
        assert_eq!(r.data_end(), 0xFFF0 + u32::MAX as usize);
        // Wrong word counts.
        let m = MsgBuilder::request(cmd::WRITE_ANDX).words(&[0; 4]).build();
        let (_, b) = first_block(&m);
        assert!(WriteAndxRequest::parse(&b).is_err());
        assert!(close_fid(&b).is_err());
    }
}
