//! Transactions: TRANSACTION (0x25, named pipes and mailslots), TRANSACTION2 (0x32, file
//! system subcommands — see `trans2`), NT_TRANSACT (0xA0), their secondary requests (0x26,
//! 0x33, 0xA1) and responses; NT_TRANSACT_CREATE parameters; and a bounded reassembler for
//! transactions split over several messages.
//!
//! Parameter and data offsets are from the header start. The views clip to the message: a
//! slice shorter than its count means the message was cut, never an out-of-bounds read.

use super::andx::Block;
use super::create::NtCreateRequest;
use super::strings::{SmbStr, StrCursor};
use super::{cmd, response_words, section, words, Accept, Smb1Error};
use crate::wire::num::{le_u16, le_u32, le_u64, le_u8};
use crate::wire::parsed;
use nom::bytes::complete::take;
use nom::combinator::cond;
use nom::sequence::preceded;
use nom::{IResult, Parser};

/// TRANSACTION named-pipe functions (setup word 0); setup word 1 is the FID for most.
pub mod pipe_fn {
    pub const SET_NMPIPE_STATE: u16 = 0x0001;
    pub const RAW_READ_NMPIPE: u16 = 0x0011;
    pub const QUERY_NMPIPE_STATE: u16 = 0x0021;
    pub const QUERY_NMPIPE_INFO: u16 = 0x0022;
    pub const PEEK_NMPIPE: u16 = 0x0023;
    pub const TRANSACT_NMPIPE: u16 = 0x0026;
    pub const RAW_WRITE_NMPIPE: u16 = 0x0031;
    pub const READ_NMPIPE: u16 = 0x0036;
    pub const WRITE_NMPIPE: u16 = 0x0037;
    pub const WAIT_NMPIPE: u16 = 0x0053;
    pub const CALL_NMPIPE: u16 = 0x0054;
}

/// NT_TRANSACT functions.
pub mod nt_fn {
    pub const CREATE: u16 = 0x0001;
    pub const IOCTL: u16 = 0x0002;
    pub const SET_SECURITY_DESC: u16 = 0x0003;
    pub const NOTIFY_CHANGE: u16 = 0x0004;
    pub const RENAME: u16 = 0x0005;
    pub const QUERY_SECURITY_DESC: u16 = 0x0006;
}

/// Most parameter bytes kept for one reassembled transaction.
pub const MAX_TRANS_PARAM_BYTES: usize = 64 * 1024;
/// Most data bytes kept for one reassembled transaction (pipe data beyond this should be
/// streamed to DCE-RPC instead of reassembled).
pub const MAX_TRANS_DATA_BYTES: usize = 1024 * 1024;

/// The parameter and data sections a transaction names, each by (offset from the header
/// start, count); shared by every primary, secondary and response form.
fn sections<'a>(
    msg: &'a [u8],
    block: &Block<'a>,
    params: (usize, usize),
    data: (usize, usize),
) -> Result<(&'a [u8], &'a [u8]), Smb1Error> {
    Ok((
        section(msg, block, "parameter offset", params.0, params.1)?,
        section(msg, block, "data offset", data.0, data.1)?,
    ))
}

/// Counted setup words: SetupCount (in words) is the byte at `count_at` of `block`'s parameter
/// words, and the words start at `start`. Err when the count says more words than the block holds.
fn setup_words<'a>(
    block: &Block<'a>,
    count_at: usize,
    start: usize,
) -> Result<&'a [u8], Smb1Error> {
    let count = parsed(preceded(take(count_at), le_u8).parse(block.words));
    count
        .and_then(|n| parsed(preceded(take(start), take(usize::from(n) * 2)).parse(block.words)))
        .ok_or(Smb1Error::OutOfBounds {
            command: block.command,
            what: "setup words",
        })
}

/// A TRANSACTION or TRANSACTION2 primary request.
#[derive(Clone, Debug)]
pub struct TransRequest<'a> {
    pub command: u8,
    pub total_param_count: u16,
    pub total_data_count: u16,
    pub max_param_count: u16,
    pub max_data_count: u16,
    pub max_setup_count: u8,
    pub flags: u16,
    pub timeout: u32,
    pub param_count: u16,
    pub param_offset: u16,
    pub data_count: u16,
    pub data_offset: u16,
    /// Setup words, raw (SetupCount × 2 bytes).
    pub setup: &'a [u8],
    /// TRANSACTION only: `\PIPE\`, `\PIPE\LANMAN`, `\MAILSLOT\…`.
    pub name: SmbStr<'a>,
    pub params: &'a [u8],
    pub data: &'a [u8],
}

impl<'a> TransRequest<'a> {
    pub fn parse(
        msg: &'a [u8],
        block: &Block<'a>,
        unicode: bool,
    ) -> Result<TransRequest<'a>, Smb1Error> {
        // Reserved bytes sit after MaxSetupCount and after Timeout.
        let fields = (
            (le_u16, le_u16, le_u16, le_u16),
            le_u8,
            preceded(take(1usize), le_u16),
            le_u32,
            preceded(take(2usize), (le_u16, le_u16, le_u16, le_u16)),
        );
        let (
            (total_param_count, total_data_count, max_param_count, max_data_count),
            max_setup_count,
            flags,
            timeout,
            (param_count, param_offset, data_count, data_offset),
        ) = words(block, Accept::AtLeast(14), fields)?;
        let setup = setup_words(block, 26, 28)?;
        let (params, data) = sections(
            msg,
            block,
            (param_offset.into(), param_count.into()),
            (data_offset.into(), data_count.into()),
        )?;
        let name = if block.command == cmd::TRANSACTION {
            StrCursor::new(msg, block.bytes_offset, block.bytes_end()).string(unicode)
        } else {
            SmbStr::default()
        };
        Ok(TransRequest {
            command: block.command,
            total_param_count,
            total_data_count,
            max_param_count,
            max_data_count,
            max_setup_count,
            flags,
            timeout,
            param_count,
            param_offset,
            data_count,
            data_offset,
            setup,
            name,
            params,
            data,
        })
    }

    pub fn setup_word(&self, i: usize) -> Option<u16> {
        parsed(preceded(take(i.checked_mul(2)?), le_u16).parse(self.setup))
    }

    /// TRANSACTION to a named pipe: (function, FID) from the setup words. The name is `\PIPE\`
    /// (the pipe itself is the FID); `\PIPE\LANMAN` (RAP) has no setup words and gives None.
    pub fn pipe_call(&self) -> Option<(u16, u16)> {
        if self.command != cmd::TRANSACTION || !self.is_pipe_name() {
            return None;
        }
        Some((self.setup_word(0)?, self.setup_word(1).unwrap_or(0)))
    }

    fn is_pipe_name(&self) -> bool {
        let n = self.name.decode();
        n.len() >= 6
            && n.get(..6)
                .is_some_and(|p| p.eq_ignore_ascii_case("\\PIPE\\"))
    }

    /// All parameters and data arrived in this message (no secondary requests follow).
    pub fn is_complete(&self) -> bool {
        self.param_count >= self.total_param_count && self.data_count >= self.total_data_count
    }
}

/// The counts every transaction piece (a response, or a secondary request) carries: the
/// totals, then this piece's parameters and data as count, offset from the header start and
/// displacement in the whole. `N` is u16 (TRANSACTION, TRANSACTION2) or u32 (NT_TRANSACT).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Piece<N> {
    pub total_param_count: N,
    pub total_data_count: N,
    pub param_count: N,
    pub param_offset: N,
    pub param_displacement: N,
    pub data_count: N,
    pub data_offset: N,
    pub data_displacement: N,
}

impl<N: Copy + Into<u64>> Piece<N> {
    /// (parameters, data) of this piece in `msg`.
    fn sections<'a>(
        &self,
        msg: &'a [u8],
        block: &Block<'a>,
    ) -> Result<(&'a [u8], &'a [u8]), Smb1Error> {
        sections(
            msg,
            block,
            (wide(self.param_offset), wide(self.param_count)),
            (wide(self.data_offset), wide(self.data_count)),
        )
    }

    /// This piece reaches the end of both the parameters and the data.
    pub fn is_last(&self) -> bool {
        let reaches = |disp: N, count: N, total: N| disp.into() + count.into() >= total.into();
        reaches(
            self.param_displacement,
            self.param_count,
            self.total_param_count,
        ) && reaches(
            self.data_displacement,
            self.data_count,
            self.total_data_count,
        )
    }
}

/// The counts of a piece: the two totals, `gap` reserved bytes, then count, offset and
/// displacement of the parameters and of the data, each read by `num` (le_u16 or le_u32).
fn piece<'a, N>(
    num: fn(&'a [u8]) -> IResult<&'a [u8], N>,
    gap: usize,
) -> impl Parser<&'a [u8], Output = Piece<N>, Error = nom::error::Error<&'a [u8]>> {
    (num, num, take(gap), (num, num, num), (num, num, num)).map(
        |(total_param_count, total_data_count, _, params, data)| Piece {
            total_param_count,
            total_data_count,
            param_count: params.0,
            param_offset: params.1,
            param_displacement: params.2,
            data_count: data.0,
            data_offset: data.1,
            data_displacement: data.2,
        },
    )
}

/// A u16/u32 wire count as usize (saturating where usize is narrower).
fn wide<N: Into<u64>>(n: N) -> usize {
    usize::try_from(n.into()).unwrap_or(usize::MAX)
}

/// TRANSACTION / TRANSACTION2 response (possibly one of several carrying pieces).
#[derive(Clone, Debug)]
pub struct TransResponse<'a> {
    pub piece: Piece<u16>,
    pub setup: &'a [u8],
    pub params: &'a [u8],
    pub data: &'a [u8],
}

impl<'a> TransResponse<'a> {
    /// `Ok(None)` for an error response (WordCount 0).
    pub fn parse(msg: &'a [u8], block: &Block<'a>) -> Result<Option<TransResponse<'a>>, Smb1Error> {
        // Two reserved bytes between the totals and the piece counts.
        let Some(piece) = response_words(block, Accept::AtLeast(10), piece(le_u16, 2))? else {
            return Ok(None);
        };
        let setup = setup_words(block, 18, 20)?;
        let (params, data) = piece.sections(msg, block)?;
        Ok(Some(TransResponse {
            piece,
            setup,
            params,
            data,
        }))
    }

    pub fn is_last_piece(&self) -> bool {
        self.piece.is_last()
    }
}

/// TRANSACTION_SECONDARY (0x26) / TRANSACTION2_SECONDARY (0x33): further request pieces.
#[derive(Clone, Debug)]
pub struct TransSecondary<'a> {
    pub piece: Piece<u16>,
    /// TRANSACTION2_SECONDARY only.
    pub fid: Option<u16>,
    pub params: &'a [u8],
    pub data: &'a [u8],
}

impl<'a> TransSecondary<'a> {
    pub fn parse(msg: &'a [u8], block: &Block<'a>) -> Result<TransSecondary<'a>, Smb1Error> {
        let counts: &[u8] = match block.command {
            cmd::TRANSACTION_SECONDARY => &[8],
            cmd::TRANSACTION2_SECONDARY => &[9],
            _ => &[],
        };
        let trans2 = block.command == cmd::TRANSACTION2_SECONDARY;
        let (piece, fid) = words(
            block,
            Accept::OneOf(counts),
            (piece(le_u16, 0), cond(trans2, le_u16)),
        )?;
        let (params, data) = piece.sections(msg, block)?;
        Ok(TransSecondary {
            piece,
            fid,
            params,
            data,
        })
    }
}

/// NT_TRANSACT primary request.
#[derive(Clone, Debug)]
pub struct NtTransRequest<'a> {
    pub max_setup_count: u8,
    pub total_param_count: u32,
    pub total_data_count: u32,
    pub max_param_count: u32,
    pub max_data_count: u32,
    pub param_count: u32,
    pub param_offset: u32,
    pub data_count: u32,
    pub data_offset: u32,
    pub function: u16,
    pub setup: &'a [u8],
    pub params: &'a [u8],
    pub data: &'a [u8],
    /// Absolute offset of `params` (string alignment inside the parameters depends on it).
    pub params_at: usize,
}

impl<'a> NtTransRequest<'a> {
    pub fn parse(msg: &'a [u8], block: &Block<'a>) -> Result<NtTransRequest<'a>, Smb1Error> {
        // MaxSetupCount, 2 reserved bytes, the totals and maxima, this piece's counts and
        // offsets, SetupCount, Function.
        let fields = (
            le_u8,
            preceded(take(2usize), (le_u32, le_u32, le_u32, le_u32)),
            (le_u32, le_u32, le_u32, le_u32),
            preceded(le_u8, le_u16),
        );
        let (
            max_setup_count,
            (total_param_count, total_data_count, max_param_count, max_data_count),
            (param_count, param_offset, data_count, data_offset),
            function,
        ) = words(block, Accept::AtLeast(19), fields)?;
        let setup = setup_words(block, 35, 38)?;
        let mut r = NtTransRequest {
            max_setup_count,
            total_param_count,
            total_data_count,
            max_param_count,
            max_data_count,
            param_count,
            param_offset,
            data_count,
            data_offset,
            function,
            setup,
            params: &[],
            data: &[],
            params_at: 0,
        };
        r.params_at = wide(r.param_offset);
        (r.params, r.data) = sections(
            msg,
            block,
            (wide(r.param_offset), wide(r.param_count)),
            (wide(r.data_offset), wide(r.data_count)),
        )?;
        Ok(r)
    }
}

/// NT_TRANSACT response (one piece).
#[derive(Clone, Debug)]
pub struct NtTransResponse<'a> {
    pub piece: Piece<u32>,
    pub setup: &'a [u8],
    pub params: &'a [u8],
    pub data: &'a [u8],
}

impl<'a> NtTransResponse<'a> {
    pub fn parse(
        msg: &'a [u8],
        block: &Block<'a>,
    ) -> Result<Option<NtTransResponse<'a>>, Smb1Error> {
        // Three reserved bytes before the totals.
        let fields = preceded(take(3usize), piece(le_u32, 0));
        let Some(piece) = response_words(block, Accept::AtLeast(18), fields)? else {
            return Ok(None);
        };
        let setup = setup_words(block, 35, 36)?;
        let (params, data) = piece.sections(msg, block)?;
        Ok(Some(NtTransResponse {
            piece,
            setup,
            params,
            data,
        }))
    }
}

/// NT_TRANSACT_CREATE request parameters (MS-CIFS 2.2.7.1.1): the same create as NT_CREATE_ANDX,
/// carried in a transaction. `msg` and `req` give the parameters and their absolute offset (for
/// Unicode alignment).
pub fn nt_transact_create<'a>(
    msg: &'a [u8],
    req: &NtTransRequest<'a>,
    unicode: bool,
) -> Result<NtCreateRequest<'a>, Smb1Error> {
    let p = req.params;
    let bad = Smb1Error::OutOfBounds {
        command: cmd::NT_TRANSACT,
        what: "NT_TRANSACT_CREATE parameters",
    };
    if req.function != nt_fn::CREATE {
        return Err(bad);
    }
    // Flags … CreateOptions, SecurityDescriptorLength, EALength, NameLength,
    // ImpersonationLevel, SecurityFlags: 53 bytes before the name.
    let mut fields = (
        (le_u32, le_u32, le_u32, le_u64),
        (le_u32, le_u32, le_u32, le_u32),
        (le_u32, le_u32, le_u32, le_u32, le_u8),
    );
    let (
        (flags, root_directory_fid, desired_access, allocation_size),
        (file_attributes, share_access, create_disposition, create_options),
        (_sd_len, _ea_len, name_len, impersonation_level, security_flags),
    ) = parsed(fields.parse(p)).ok_or(bad)?;
    let mut c = StrCursor::new(msg, req.params_at + 53, req.params_at + p.len());
    c.align_unicode(unicode);
    Ok(NtCreateRequest {
        flags,
        root_directory_fid,
        desired_access,
        allocation_size,
        file_attributes,
        share_access,
        create_disposition,
        create_options,
        impersonation_level,
        security_flags,
        name: SmbStr::new(c.take(name_len as usize), unicode),
    })
}

/// NT_TRANSACT_CREATE response parameters: what the state machine needs of them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NtTransCreateResponse {
    pub fid: u16,
    pub create_action: u32,
    pub file_attributes: u32,
    pub end_of_file: u64,
    pub resource_type: u16,
    pub directory: bool,
}

impl NtTransCreateResponse {
    pub fn parse(params: &[u8]) -> Result<NtTransCreateResponse, Smb1Error> {
        // OplockLevel, reserved, FID, CreateAction, EAErrorOffset, four times, FileAttributes,
        // AllocationSize, EndOfFile, ResourceType, NMPipeStatus, Directory.
        let mut fields = (
            preceded(take(2usize), (le_u16, le_u32)),
            preceded(take(36usize), le_u32),
            preceded(take(8usize), le_u64),
            (le_u16, preceded(take(2usize), le_u8)),
        );
        let ((fid, create_action), file_attributes, end_of_file, (resource_type, directory)) =
            parsed(fields.parse(params)).ok_or(Smb1Error::OutOfBounds {
                command: cmd::NT_TRANSACT,
                what: "NT_TRANSACT_CREATE response parameters",
            })?;
        Ok(NtTransCreateResponse {
            fid,
            create_action,
            file_attributes,
            end_of_file,
            resource_type,
            directory: directory != 0,
        })
    }
}

/// Joins the parameter and data pieces of one transaction (primary + secondaries, or several
/// responses) by displacement. Bounded by MAX_TRANS_PARAM_BYTES / MAX_TRANS_DATA_BYTES.
#[derive(Clone, Debug, Default)]
pub struct TransAssembly {
    pub total_params: usize,
    pub total_data: usize,
    params: Vec<u8>,
    data: Vec<u8>,
    params_got: usize,
    data_got: usize,
    /// A piece fell outside the totals or the caps; the transaction is incomplete.
    pub overflowed: bool,
}

/// What `TransAssembly::add` found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AssemblyState {
    Incomplete,
    Complete,
    /// A piece overran the totals or a cap (report MAX_TRANS_… and drop the transaction).
    Overflow,
}

impl TransAssembly {
    pub fn new(total_params: usize, total_data: usize) -> TransAssembly {
        TransAssembly {
            total_params,
            total_data,
            ..TransAssembly::default()
        }
    }

    /// Adds one piece. Totals may only shrink (as MS-CIFS allows), never grow.
    pub fn add(
        &mut self,
        total_params: usize,
        total_data: usize,
        param_disp: usize,
        params: &[u8],
        data_disp: usize,
        data: &[u8],
    ) -> AssemblyState {
        self.total_params = self.total_params.min(total_params);
        self.total_data = self.total_data.min(total_data);
        let ok_p = place(
            &mut self.params,
            &mut self.params_got,
            self.total_params,
            MAX_TRANS_PARAM_BYTES,
            param_disp,
            params,
        );
        let ok_d = place(
            &mut self.data,
            &mut self.data_got,
            self.total_data,
            MAX_TRANS_DATA_BYTES,
            data_disp,
            data,
        );
        if !(ok_p && ok_d) || self.overflowed {
            self.overflowed = true;
            return AssemblyState::Overflow;
        }
        if self.params_got >= self.total_params && self.data_got >= self.total_data {
            AssemblyState::Complete
        } else {
            AssemblyState::Incomplete
        }
    }

    pub fn params(&self) -> &[u8] {
        self.params.get(..self.total_params).unwrap_or(&self.params)
    }

    pub fn data(&self) -> &[u8] {
        self.data.get(..self.total_data).unwrap_or(&self.data)
    }
}

fn place(
    buf: &mut Vec<u8>,
    got: &mut usize,
    total: usize,
    cap: usize,
    disp: usize,
    piece: &[u8],
) -> bool {
    if piece.is_empty() {
        return true;
    }
    let Some(end) = disp.checked_add(piece.len()) else {
        return false;
    };
    if end > total || end > cap {
        return false;
    }
    if buf.len() < end {
        buf.resize(end, 0);
    }
    if let Some(dst) = buf.get_mut(disp..end) {
        dst.copy_from_slice(piece);
    }
    // Counts bytes received; overlapping pieces may over-count, which only ends a transaction
    // early (the joined bytes are still bounded by the totals).
    *got = got.saturating_add(piece.len());
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::smb::smb1::test_util::{capture_msg, first_block, utf16z, MsgBuilder, W};

    #[test]
    fn setup_words_lying_count() {
        // Count byte 2 at offset 0, words from 2: exactly 2 words present.
        let words = W::new().u8(2).u8(0).u16(0x26).u16(0x4000).done();
        let m = MsgBuilder::request(cmd::TRANSACTION).words(&words).build();
        let (_, b) = first_block(&m);
        assert_eq!(setup_words(&b, 0, 2).unwrap(), &[0x26, 0, 0x00, 0x40]);
        // A count of 3 words says more than the block holds.
        let words = W::new().u8(3).u8(0).u16(0x26).u16(0x4000).done();
        let m = MsgBuilder::request(cmd::TRANSACTION).words(&words).build();
        let (_, b) = first_block(&m);
        assert_eq!(
            setup_words(&b, 0, 2),
            Err(Smb1Error::OutOfBounds {
                command: cmd::TRANSACTION,
                what: "setup words"
            })
        );
        assert!(setup_words(&b, usize::MAX, usize::MAX).is_err());
    }

    #[test]
    fn piece_counts_and_last_piece() {
        // TRANSACTION_SECONDARY layout: totals at 0, the piece counts from 4.
        let w: Vec<u8> = [10u16, 100, 4, 60, 6, 50, 70, 50]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let (_, p) = piece(le_u16, 0).parse(&w).unwrap();
        let want = Piece {
            total_param_count: 10,
            total_data_count: 100,
            param_count: 4,
            param_offset: 60,
            param_displacement: 6,
            data_count: 50,
            data_offset: 70,
            data_displacement: 50,
        };
        assert_eq!(p, want);
        assert!(p.is_last());
        assert!(!Piece {
            data_displacement: 40,
            data_count: 59,
            ..p
        }
        .is_last());
        // Words too short for a piece are an error, not zeros.
        assert!(piece(le_u16, 2).parse(&w).is_err());
        // Lying 32-bit counts at the top of the range do not overflow.
        let max = Piece {
            total_param_count: u32::MAX,
            total_data_count: u32::MAX,
            param_count: u32::MAX,
            param_displacement: u32::MAX,
            data_count: u32::MAX,
            data_displacement: u32::MAX,
            ..Piece::default()
        };
        assert!(max.is_last());
    }

    /// raw_ntlm_in_smb frames 31/32: TransactNmPipe on FID 0x4000 (\srvsvc) carrying a
    /// DCE-RPC bind of 72 bytes at offset 84; the response carries the 68-byte bind_ack at 56.
    /// tshark: smb.trans_name \PIPE\, smb_pipe.function 0x0026, smb.dc 72/68, smb.data_offset 84/56.
    #[test]
    fn capture_transact_nmpipe() {
        let m = capture_msg("0000009cff534d4225000000000801c800000000000000000000000000080100000805001000004800000000100000000000000000000000005400480054000200260000405900005c0050004900500045005c000000000005000b0310000000480000000300000000100010000000000100000000000100c84f324b7016d30112785a47bf6ee18803000000045d888aeb1cc9119fe808002b10486002000000");
        let (h, b) = first_block(&m);
        let r = TransRequest::parse(&m, &b, h.is_unicode()).unwrap();
        assert_eq!(r.name.decode(), "\\PIPE\\");
        assert_eq!(r.pipe_call(), Some((pipe_fn::TRANSACT_NMPIPE, 0x4000)));
        assert_eq!(
            (r.data_count, r.data_offset, r.total_data_count),
            (72, 84, 72)
        );
        assert!(r.is_complete());
        assert_eq!(r.data.len(), 72);
        assert_eq!(&r.data[..3], &[5, 0, 0x0b]);
        assert!(r.params.is_empty());

        let m = capture_msg("0000007cff534d4225000000008801c800000000000000000000000000080100000805000a000044000000000038000000440038000000000045004805000c03100000004400000003000000001000106c1300000d005c504950455c73727673766300000100000000000000045d888aeb1cc9119fe808002b10486002000000");
        let (_, b) = first_block(&m);
        let r = TransResponse::parse(&m, &b).unwrap().unwrap();
        assert_eq!((r.piece.data_count, r.piece.data_offset), (68, 56));
        assert!(r.is_last_piece());
        assert_eq!(&r.data[..3], &[5, 0, 0x0c]);
    }

    /// raw_ntlm_in_smb frame 156: NT_TRANSACT NOTIFY_CHANGE (function 4) with FID 0x4005 in
    /// its setup words.
    #[test]
    fn capture_nt_transact_notify() {
        let m = capture_msg("00000051ff534d42a0000000000801c80000000000000000000000000108000000082e00170000000000000000000000b40f00000000000000000000000000000000000000000000040400470d0000054000000000");
        let (_, b) = first_block(&m);
        let r = NtTransRequest::parse(&m, &b).unwrap();
        assert_eq!(r.function, nt_fn::NOTIFY_CHANGE);
        assert_eq!(&r.setup[4..6], &[0x05, 0x40]);
        assert!(r.params.is_empty() && r.data.is_empty());
    }

    /// A DCE-RPC request PDU (call 7, opnum 12) with PFC_FIRST_FRAG only — a fragment of a
    /// larger call — whose bytes travel in a TransactNmPipe TRANSACTION plus one
    /// TRANSACTION_SECONDARY. The SMB layer must hand on exactly the PDU bytes, in order.
    fn dce_request_fragment() -> Vec<u8> {
        let stub: Vec<u8> = (0u8..40).collect();
        let frag_len = (24 + stub.len()) as u16;
        let mut pdu = vec![5, 0, 0, 0x01, 0x10, 0, 0, 0];
        pdu.extend_from_slice(&frag_len.to_le_bytes());
        pdu.extend_from_slice(&[0, 0]); // auth length
        pdu.extend_from_slice(&7u32.to_le_bytes()); // call id
        pdu.extend_from_slice(&200u32.to_le_bytes()); // alloc hint: the whole call is larger
        pdu.extend_from_slice(&[0, 0]); // context id
        pdu.extend_from_slice(&12u16.to_le_bytes()); // opnum
        pdu.extend(stub);
        pdu
    }

    fn trans_primary(total_data: u16, data: &[u8]) -> Vec<u8> {
        // words: 14 + 2 setup = 16 words = 32 bytes → bytes at 32+1+32+2 = 67 (odd): pad, name
        // "\PIPE\" in Unicode at 68 (14 bytes) → 82; data at 84 after 2 pad bytes.
        let data_offset = 84u16;
        let words = W::new()
            .u16(0)
            .u16(total_data)
            .u16(0)
            .u16(1024)
            .u8(0)
            .u8(0)
            .u16(0)
            .u32(0)
            .u16(0)
            .u16(0)
            .u16(data_offset)
            .u16(data.len() as u16)
            .u16(data_offset)
            .u8(2)
            .u8(0)
            .u16(pipe_fn::TRANSACT_NMPIPE)
            .u16(0x4001)
            .done();
        let mut bytes = vec![0u8];
        bytes.extend(utf16z("\\PIPE\\"));
        bytes.extend_from_slice(&[0, 0]);
        bytes.extend_from_slice(data);
        MsgBuilder::request(cmd::TRANSACTION)
            .unicode()
            .ids(1, 2, 3, 4)
            .words(&words)
            .bytes(&bytes)
            .build()
    }

    #[test]
    fn trans_carrying_a_fragmented_dcerpc_request() {
        let pdu = dce_request_fragment();
        assert_eq!(pdu[3] & 0x03, 0x01, "first fragment, not last");

        // Whole fragment in one TRANSACTION.
        let m = trans_primary(pdu.len() as u16, &pdu);
        let (h, b) = first_block(&m);
        let r = TransRequest::parse(&m, &b, h.is_unicode()).unwrap();
        assert_eq!(r.pipe_call(), Some((pipe_fn::TRANSACT_NMPIPE, 0x4001)));
        assert!(r.is_complete());
        assert_eq!(r.data, &pdu[..]);

        // The same fragment split: 30 bytes in the primary, the rest in a secondary.
        let m1 = trans_primary(pdu.len() as u16, &pdu[..30]);
        let (h1, b1) = first_block(&m1);
        let r1 = TransRequest::parse(&m1, &b1, h1.is_unicode()).unwrap();
        assert!(!r1.is_complete());
        let mut asm = TransAssembly::new(r1.total_param_count.into(), r1.total_data_count.into());
        assert_eq!(
            asm.add(0, pdu.len(), 0, r1.params, 0, r1.data),
            AssemblyState::Incomplete
        );

        let rest = &pdu[30..];
        let data_offset = 32 + 1 + 16 + 2;
        let words = W::new()
            .u16(0)
            .u16(pdu.len() as u16)
            .u16(0)
            .u16(0)
            .u16(0)
            .u16(rest.len() as u16)
            .u16(data_offset)
            .u16(30)
            .done();
        let m2 = MsgBuilder::request(cmd::TRANSACTION_SECONDARY)
            .ids(1, 2, 3, 4)
            .words(&words)
            .bytes(rest)
            .build();
        let (_, b2) = first_block(&m2);
        let s = TransSecondary::parse(&m2, &b2).unwrap();
        assert_eq!((s.piece.data_displacement, s.data.len()), (30, rest.len()));
        let p = s.piece;
        assert_eq!(
            asm.add(
                p.total_param_count.into(),
                p.total_data_count.into(),
                p.param_displacement.into(),
                s.params,
                p.data_displacement.into(),
                s.data
            ),
            AssemblyState::Complete
        );
        assert_eq!(asm.data(), &pdu[..]);
    }

    #[test]
    fn assembly_rejects_pieces_beyond_totals_and_caps() {
        let mut a = TransAssembly::new(0, 10);
        assert_eq!(a.add(0, 10, 0, &[], 8, &[1, 2, 3]), AssemblyState::Overflow);
        let mut a = TransAssembly::new(0, usize::MAX);
        assert_eq!(
            a.add(0, usize::MAX, 0, &[], MAX_TRANS_DATA_BYTES, &[1]),
            AssemblyState::Overflow
        );
        let mut a = TransAssembly::new(0, 4);
        assert_eq!(
            a.add(0, 4, 0, &[], usize::MAX, &[1]),
            AssemblyState::Overflow
        );
        // Totals cannot grow after the primary.
        let mut a = TransAssembly::new(0, 4);
        assert_eq!(a.add(0, 100, 0, &[], 0, &[0; 8]), AssemblyState::Overflow);
    }

    #[test]
    fn hostile_offsets_and_counts() {
        // Data offset pointing into the parameter words.
        let pdu = dce_request_fragment();
        let mut m = trans_primary(pdu.len() as u16, &pdu);
        m[33 + 24] = 40; // DataOffset low byte → 40
        m[33 + 25] = 0;
        let (h, b) = first_block(&m);
        assert!(TransRequest::parse(&m, &b, h.is_unicode()).is_err());
        // Counts beyond the message: clipped.
        let mut m = trans_primary(pdu.len() as u16, &pdu);
        m[33 + 22] = 0xFF;
        m[33 + 23] = 0xFF;
        let (h, b) = first_block(&m);
        let r = TransRequest::parse(&m, &b, h.is_unicode()).unwrap();
        assert_eq!(r.data.len(), pdu.len());
        assert!(r.data.len() < usize::from(r.data_count));
        // Setup count beyond the words.
        let mut m = trans_primary(pdu.len() as u16, &pdu);
        m[33 + 26] = 30;
        let (h, b) = first_block(&m);
        assert!(TransRequest::parse(&m, &b, h.is_unicode()).is_err());
    }

    #[test]
    fn nt_transact_create_hand_built() {
        let name = utf16z("\\evil.exe");
        let mut params = W::new()
            .u32(0)
            .u32(0)
            .u32(0x0012_019f)
            .u64(0)
            .u32(0x80)
            .u32(7)
            .u32(5)
            .u32(0x40)
            .u32(0)
            .u32(0)
            .u32(name.len() as u32)
            .u32(2)
            .u8(0)
            .done();
        // params at 84 (even): name at 84+53 = 137 is odd → one pad byte.
        params.push(0);
        params.extend(&name);
        let param_offset = 84u32;
        let words = W::new()
            .u8(0)
            .u16(0)
            .u32(params.len() as u32)
            .u32(0)
            .u32(100)
            .u32(0)
            .u32(params.len() as u32)
            .u32(param_offset)
            .u32(0)
            .u32(0)
            .u8(0)
            .u16(nt_fn::CREATE)
            .done();
        assert_eq!(words.len(), 38);
        let pad = param_offset as usize - (32 + 1 + 38 + 2);
        let mut bytes = vec![0u8; pad];
        bytes.extend(&params);
        let m = MsgBuilder::request(cmd::NT_TRANSACT)
            .unicode()
            .words(&words)
            .bytes(&bytes)
            .build();
        let (h, b) = first_block(&m);
        let r = NtTransRequest::parse(&m, &b).unwrap();
        assert_eq!(r.function, nt_fn::CREATE);
        let c = nt_transact_create(&m, &r, h.is_unicode()).unwrap();
        assert_eq!(c.name.decode(), "\\evil.exe");
        assert_eq!(
            (c.desired_access, c.create_disposition, c.create_options),
            (0x0012_019f, 5, 0x40)
        );

        let mut rp = vec![0u8; 69];
        rp[2..4].copy_from_slice(&0x4007u16.to_le_bytes());
        rp[4..8].copy_from_slice(&2u32.to_le_bytes());
        rp[56..64].copy_from_slice(&0u64.to_le_bytes());
        let cr = NtTransCreateResponse::parse(&rp).unwrap();
        assert_eq!((cr.fid, cr.create_action), (0x4007, 2));
        assert!(NtTransCreateResponse::parse(&rp[..20]).is_err());
    }
}
