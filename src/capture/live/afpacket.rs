//! AF_PACKET capture with a TPACKET_V3 ring, one socket per worker and interface, spread by the
//! kernel (`PACKET_FANOUT_CBPF` with [`super::fanout::host_pair_program`]).
//!
//! The kernel fills 1 MiB blocks of a ring mapped into this process; a worker walks a filled block
//! frame by frame and hands each frame to its engine as a borrowed slice of the ring (no copy, no
//! other thread), then gives the block back. A block is handed over when full or after
//! [`BLOCK_RETIRE_MS`] on a quiet link.
//!
//! Hand-written over `libc` because no maintained crate does TPACKET_V3 *and* a classic BPF fanout
//! program: `af_packet` is GPL-3.0 and unmaintained (nom 5), `netring` (young, API in flux) offers
//! the kernel's fixed fanout modes and eBPF only, which needs a BPF loader and CAP_BPF. The kernel
//! structures themselves come from `libc`.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicU32, Ordering};

use super::fanout::Insn;
use super::LiveError;
use crate::capture::{Frame, Linktype, LINKTYPE_ETHERNET, LINKTYPE_RAW};
use crate::time::Ts;

/// Ring block size: a multiple of the page size, large enough for several 64 KiB GRO frames.
pub const RING_BLOCK_BYTES: u32 = 1 << 20;
/// A partly filled block is handed over after this long: bounds latency on a quiet link.
pub const BLOCK_RETIRE_MS: u32 = 50;
/// Frame slot size the kernel's ring arithmetic asks for (TPACKET_V3 packs frames of any size).
const FRAME_SLOT: u32 = 2048;

/// `tpacket_block_desc` field offsets (version, offset_to_priv, then `tpacket_hdr_v1`).
const BLOCK_STATUS: usize = 8;
const BLOCK_NUM_PKTS: usize = 12;
const BLOCK_FIRST_PKT: usize = 16;
const BLOCK_LEN: usize = 20;
const _: () = assert!(
    std::mem::offset_of!(libc::tpacket_block_desc, hdr)
        + std::mem::offset_of!(libc::tpacket_hdr_v1, blk_len)
        == BLOCK_LEN
);
const _: () = assert!(std::mem::offset_of!(libc::tpacket_hdr_v1, num_pkts) + 8 == BLOCK_NUM_PKTS);
const _: () =
    assert!(std::mem::offset_of!(libc::tpacket_hdr_v1, offset_to_first_pkt) + 8 == BLOCK_FIRST_PKT);

const PACKET_FANOUT_FLAG_UNIQUEID: u32 = 0x2000;
const ARPHRD_ETHER: u16 = 1;
const ARPHRD_LOOPBACK: u16 = 772;
const ARPHRD_RAWIP: u16 = 519;
const ARPHRD_NONE: u16 = 0xfffe;

/// Kernel counters of one socket since it opened, widened to 64 bits (the kernel's are 32-bit and
/// reset on every read).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct RingStats {
    /// Frames that passed the filter and reached the socket, dropped ones included.
    pub received: u64,
    /// Dropped because every block of the ring was full: the worker did not keep up.
    pub drops: u64,
    /// Times the ring froze (every block full); frames were dropped while it was.
    pub freezes: u64,
}

/// One packet socket with its mapped ring, bound to one interface.
pub struct RingSocket {
    fd: OwnedFd,
    ring: *mut u8,
    block_bytes: usize,
    blocks: usize,
    next_block: usize,
    /// The block being read, if one is held (the kernel does not touch it until it is handed back).
    held: Option<Cursor>,
    iface: String,
    linktype: Linktype,
    stats: RingStats,
}

/// Where reading stands in the held block.
#[derive(Clone, Copy, Debug)]
struct Cursor {
    /// Offset of the next frame header in the block.
    at: usize,
    /// Frames the block still holds.
    left: u32,
    /// Bytes of the block the kernel filled.
    used: usize,
}

// SAFETY: the ring mapping belongs to this value alone (no other alias in the process); moving it
// to the worker thread that reads it is sound.
unsafe impl Send for RingSocket {}

impl std::fmt::Debug for RingSocket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RingSocket")
            .field("iface", &self.iface)
            .field("blocks", &self.blocks)
            .finish_non_exhaustive()
    }
}

fn setopt<T>(fd: RawFd, level: i32, name: i32, value: &T) -> io::Result<()> {
    // SAFETY: `value` is a live T of the size passed.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (value as *const T).cast(),
            std::mem::size_of::<T>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

fn getopt<T: Default>(fd: RawFd, level: i32, name: i32) -> io::Result<T> {
    let mut value = T::default();
    let mut len = std::mem::size_of::<T>() as libc::socklen_t;
    // SAFETY: the kernel writes at most `len` bytes into `value`.
    let rc = unsafe { libc::getsockopt(fd, level, name, (&mut value as *mut T).cast(), &mut len) };
    if rc == 0 {
        Ok(value)
    } else {
        Err(io::Error::last_os_error())
    }
}

#[derive(Default)]
struct StatsV3 {
    packets: u32,
    drops: u32,
    freezes: u32,
}

fn prog(insns: &[Insn]) -> libc::sock_fprog {
    libc::sock_fprog {
        len: insns.len() as u16,
        filter: insns.as_ptr().cast_mut(),
    }
}

impl RingSocket {
    /// Opens a packet socket on `iface` with a ring of `ring_mib` MiB and the capture filter
    /// `bpf` (installed before the socket is bound, so no unfiltered frame gets in), in
    /// promiscuous mode if asked. Needs CAP_NET_RAW.
    pub fn open(
        iface: &str,
        ring_mib: u32,
        bpf: Option<&str>,
        promiscuous: bool,
    ) -> Result<RingSocket, LiveError> {
        let err = |op: &'static str, source: io::Error| LiveError::from_os(iface, op, source);
        let name = CString::new(iface).map_err(|_| LiveError::NoInterface(iface.into()))?;
        // SAFETY: a valid C string.
        let ifindex = unsafe { libc::if_nametoindex(name.as_ptr()) };
        if ifindex == 0 {
            return Err(LiveError::NoInterface(iface.into()));
        }
        // Protocol 0: no frame arrives before bind, when the ring and filter are in place.
        // SAFETY: plain syscall.
        let raw = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
        if raw < 0 {
            return Err(err("socket", io::Error::last_os_error()));
        }
        // SAFETY: a fresh descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let raw = fd.as_raw_fd();
        setopt(
            raw,
            libc::SOL_PACKET,
            libc::PACKET_VERSION,
            &(libc::tpacket_versions::TPACKET_V3 as libc::c_int),
        )
        .map_err(|e| err("PACKET_VERSION", e))?;
        let linktype = hardware_linktype(raw, &name)
            .map_err(|e| err("SIOCGIFHWADDR", e))?
            .ok_or_else(|| LiveError::Unsupported {
                iface: iface.into(),
                detail: "not an Ethernet or raw-IP interface; use --capture pcap".into(),
            })?;
        if let Some(expr) = bpf {
            let filter = super::compile_filter(expr, linktype)?;
            setopt(
                raw,
                libc::SOL_SOCKET,
                libc::SO_ATTACH_FILTER,
                &prog(&filter),
            )
            .map_err(|e| err("SO_ATTACH_FILTER", e))?;
        }
        let blocks =
            ring_mib.clamp(1, crate::config::MAX_RING_MIB) * ((1 << 20) / RING_BLOCK_BYTES);
        let req = libc::tpacket_req3 {
            tp_block_size: RING_BLOCK_BYTES,
            tp_block_nr: blocks,
            tp_frame_size: FRAME_SLOT,
            tp_frame_nr: RING_BLOCK_BYTES / FRAME_SLOT * blocks,
            tp_retire_blk_tov: BLOCK_RETIRE_MS,
            tp_sizeof_priv: 0,
            tp_feature_req_word: 0,
        };
        setopt(raw, libc::SOL_PACKET, libc::PACKET_RX_RING, &req)
            .map_err(|e| err("PACKET_RX_RING", e))?;
        let len = RING_BLOCK_BYTES as usize * blocks as usize;
        // SAFETY: maps the ring just configured on this socket; checked for failure below.
        let ring = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                raw,
                0,
            )
        };
        if ring == libc::MAP_FAILED {
            return Err(err("mmap ring", io::Error::last_os_error()));
        }
        // From here on Drop unmaps.
        let sock = RingSocket {
            fd,
            ring: ring.cast(),
            block_bytes: RING_BLOCK_BYTES as usize,
            blocks: blocks as usize,
            next_block: 0,
            held: None,
            iface: iface.to_string(),
            linktype,
            stats: RingStats::default(),
        };
        // SAFETY: sockaddr_ll is plain data; zero is a valid start.
        let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_protocol = (libc::ETH_P_ALL as u16).to_be();
        sll.sll_ifindex = ifindex as i32;
        // SAFETY: a valid sockaddr_ll of the size passed.
        let rc = unsafe {
            libc::bind(
                raw,
                (&sll as *const libc::sockaddr_ll).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        if rc != 0 {
            return Err(err("bind", io::Error::last_os_error()));
        }
        if promiscuous {
            let mreq = libc::packet_mreq {
                mr_ifindex: ifindex as i32,
                mr_type: libc::PACKET_MR_PROMISC as u16,
                mr_alen: 0,
                mr_address: [0; 8],
            };
            setopt(raw, libc::SOL_PACKET, libc::PACKET_ADD_MEMBERSHIP, &mreq)
                .map_err(|e| err("promiscuous mode", e))?;
        }
        Ok(sock)
    }

    /// Joins fanout group `group` (`None`: a new group with an id no other socket in this network
    /// namespace uses) with the host-pair program; returns the group id for the other members.
    /// Members are numbered in the order they join: join worker 0's socket first.
    pub fn join_fanout(&self, group: Option<u16>, program: &[Insn]) -> Result<u16, LiveError> {
        let raw = self.fd.as_raw_fd();
        let err = |op, e| LiveError::from_os(&self.iface, op, e);
        let kind: u32 = libc::PACKET_FANOUT_CBPF;
        let arg = match group {
            None => (kind | PACKET_FANOUT_FLAG_UNIQUEID) << 16,
            Some(id) => (kind << 16) | u32::from(id),
        };
        setopt(
            raw,
            libc::SOL_PACKET,
            libc::PACKET_FANOUT,
            &(arg as libc::c_int),
        )
        .map_err(|e| err("PACKET_FANOUT (CBPF)", e))?;
        let id = match group {
            Some(id) => id,
            None => {
                let got: libc::c_int = getopt(raw, libc::SOL_PACKET, libc::PACKET_FANOUT)
                    .map_err(|e| err("PACKET_FANOUT id", e))?;
                // The program belongs to the group: set once, by its first member.
                setopt(
                    raw,
                    libc::SOL_PACKET,
                    libc::PACKET_FANOUT_DATA,
                    &prog(program),
                )
                .map_err(|e| err("PACKET_FANOUT_DATA", e))?;
                (got & 0xffff) as u16
            }
        };
        Ok(id)
    }

    pub fn interface(&self) -> &str {
        &self.iface
    }

    pub fn linktype(&self) -> Linktype {
        self.linktype
    }

    pub fn fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// The next frame, borrowed from the ring, without consuming it (call [`Self::consume`] when
    /// done with it); `None` when the kernel has handed over nothing more (poll [`Self::fd`]).
    pub fn peek(&mut self) -> Option<Frame<'_>> {
        // Bounded: each round hands a block back, and there are `blocks` of them.
        let mut cur = None;
        for _ in 0..=self.blocks {
            let c = match self.held {
                Some(c) => c,
                None => self.take_block()?,
            };
            if c.left > 0 && frame_at(&self.block()[..c.used], c.at).is_some() {
                cur = Some(c);
                break;
            }
            // Exhausted, or a header that does not fit the block: the block goes back.
            self.release_block();
        }
        let c = cur?;
        let (h, data) = frame_at(&self.block()[..c.used], c.at)?;
        Some(h.frame(self.linktype, data))
    }

    /// Moves past the frame [`Self::peek`] returned; gives the block back after its last frame.
    pub fn consume(&mut self) {
        let Some(cur) = self.held else { return };
        let next = frame_at(&self.block()[..cur.used], cur.at).map_or(0, |(h, _)| h.next);
        if cur.left <= 1 || next == 0 {
            self.release_block();
        } else {
            self.held = Some(Cursor {
                at: cur.at + next as usize,
                left: cur.left - 1,
                ..cur
            });
        }
    }

    /// Time of the next frame, if one is there.
    pub fn peek_ts(&mut self) -> Option<Ts> {
        self.peek().map(|f| f.ts)
    }

    fn block_status(&self) -> &AtomicU32 {
        let start = self.next_block * self.block_bytes;
        // SAFETY: the block lies inside the mapping (next_block < blocks); its status word is
        // 4-aligned (blocks are page-aligned) and shared with the kernel, hence atomic.
        unsafe { &*(self.ring.add(start + BLOCK_STATUS) as *const AtomicU32) }
    }

    /// The current block's bytes. Only called while it is held (its status says USER: the
    /// kernel does not write it until we hand it back).
    fn block(&self) -> &[u8] {
        let start = self.next_block * self.block_bytes;
        // SAFETY: inside the mapping, and not written by the kernel while held (see above).
        unsafe { std::slice::from_raw_parts(self.ring.add(start), self.block_bytes) }
    }

    fn take_block(&mut self) -> Option<Cursor> {
        if self.block_status().load(Ordering::Acquire) & libc::TP_STATUS_USER == 0 {
            return None;
        }
        let b = self.block();
        let cur = Cursor {
            at: read_u32(b, BLOCK_FIRST_PKT).unwrap_or(0) as usize,
            left: read_u32(b, BLOCK_NUM_PKTS).unwrap_or(0),
            used: read_u32(b, BLOCK_LEN).map_or(0, |l| (l as usize).min(b.len())),
        };
        self.held = Some(cur);
        Some(cur)
    }

    fn release_block(&mut self) {
        if self.held.take().is_some() {
            self.block_status()
                .store(libc::TP_STATUS_KERNEL, Ordering::Release);
            self.next_block = (self.next_block + 1) % self.blocks;
        }
    }

    /// Kernel counters since open (call at least every few seconds on a fast link: the kernel's
    /// are 32-bit).
    pub fn stats(&mut self) -> Result<RingStats, LiveError> {
        let s: StatsV3 = getopt(
            self.fd.as_raw_fd(),
            libc::SOL_PACKET,
            libc::PACKET_STATISTICS,
        )
        .map_err(|e| LiveError::from_os(&self.iface, "PACKET_STATISTICS", e))?;
        // The kernel's `tp_packets` already includes `tp_drops` for TPACKET_V3.
        self.stats.received += u64::from(s.packets);
        self.stats.drops += u64::from(s.drops);
        self.stats.freezes += u64::from(s.freezes);
        Ok(self.stats)
    }
}

impl Drop for RingSocket {
    fn drop(&mut self) {
        // SAFETY: the mapping made in open, of this length; not used after this.
        unsafe {
            libc::munmap(self.ring.cast(), self.block_bytes * self.blocks);
        }
    }
}

fn read_u32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn read_u16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

/// The frame whose header is at `at` in `block`, if header and data lie inside it: a corrupt
/// ring ends the block instead of reading outside it.
fn frame_at(block: &[u8], at: usize) -> Option<(FrameHeader, &[u8])> {
    let h = FrameHeader::read(block, at)?;
    let from = at.checked_add(usize::from(h.mac))?;
    let data = block.get(from..from.checked_add(h.snaplen)?)?;
    Some((h, data))
}

/// The fields of `tpacket3_hdr` a reader needs.
struct FrameHeader {
    next: u32,
    sec: u32,
    nsec: u32,
    snaplen: usize,
    len: u32,
    mac: u16,
}

impl FrameHeader {
    fn frame<'a>(&self, linktype: Linktype, data: &'a [u8]) -> Frame<'a> {
        Frame {
            ts: Ts(u64::from(self.sec) * 1_000_000_000 + u64::from(self.nsec)),
            linktype,
            orig_len: self.len,
            data,
        }
    }

    fn read(b: &[u8], at: usize) -> Option<FrameHeader> {
        use std::mem::offset_of;
        type H = libc::tpacket3_hdr;
        Some(FrameHeader {
            next: read_u32(b, at + offset_of!(H, tp_next_offset))?,
            sec: read_u32(b, at + offset_of!(H, tp_sec))?,
            nsec: read_u32(b, at + offset_of!(H, tp_nsec))?,
            snaplen: read_u32(b, at + offset_of!(H, tp_snaplen))? as usize,
            len: read_u32(b, at + offset_of!(H, tp_len))?,
            mac: read_u16(b, at + offset_of!(H, tp_mac))?,
        })
    }
}

/// The link type of interface `name`, from its hardware type; `None` for types the decoder does
/// not read.
fn hardware_linktype(fd: RawFd, name: &CString) -> io::Result<Option<Linktype>> {
    // SAFETY: ifreq is plain data; zero is a valid start.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    let bytes = name.as_bytes_with_nul();
    if bytes.len() > req.ifr_name.len() {
        return Err(io::Error::from_raw_os_error(libc::ENAMETOOLONG));
    }
    for (d, s) in req.ifr_name.iter_mut().zip(bytes) {
        *d = *s as libc::c_char;
    }
    // SAFETY: SIOCGIFHWADDR reads the name and writes the hardware address of a valid ifreq.
    let rc = unsafe { libc::ioctl(fd, libc::SIOCGIFHWADDR, &mut req) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: SIOCGIFHWADDR filled the `ifru_hwaddr` member.
    let hatype = unsafe { req.ifr_ifru.ifru_hwaddr.sa_family };
    Ok(match hatype {
        ARPHRD_ETHER | ARPHRD_LOOPBACK => Some(LINKTYPE_ETHERNET),
        ARPHRD_RAWIP | ARPHRD_NONE => Some(LINKTYPE_RAW),
        _ => None,
    })
}

/// Waits until one of `fds` is readable or `timeout_ms` passes (or a signal arrives).
pub fn wait_any(fds: &[RawFd], timeout_ms: i32) {
    let mut pfds: Vec<libc::pollfd> = fds
        .iter()
        .map(|&fd| libc::pollfd {
            fd,
            events: libc::POLLIN | libc::POLLERR,
            revents: 0,
        })
        .collect();
    // SAFETY: `pfds` holds `len` valid pollfds. Every outcome (ready, timeout, EINTR, error) is
    // followed by reading the rings, which reports nothing or frames.
    unsafe {
        libc::poll(pfds.as_mut_ptr(), pfds.len() as libc::nfds_t, timeout_ms);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A block as the kernel lays it out: descriptor, then frames each with a `tpacket3_hdr`.
    fn block(frames: &[&[u8]], corrupt_next: bool) -> Vec<u8> {
        let mut b = vec![0u8; 4096];
        let first = 48usize;
        let mut at = first;
        for (i, f) in frames.iter().enumerate() {
            let mac = 80u16;
            let next = if i + 1 == frames.len() {
                0
            } else {
                (mac as usize + f.len() + 15) & !15
            };
            let written = if corrupt_next { 1 << 20 } else { next };
            b[at..at + 4].copy_from_slice(&(written as u32).to_ne_bytes());
            b[at + 4..at + 8].copy_from_slice(&7u32.to_ne_bytes());
            b[at + 8..at + 12].copy_from_slice(&5u32.to_ne_bytes());
            b[at + 12..at + 16].copy_from_slice(&(f.len() as u32).to_ne_bytes());
            b[at + 16..at + 20].copy_from_slice(&(f.len() as u32 + 4).to_ne_bytes());
            b[at + 24..at + 26].copy_from_slice(&mac.to_ne_bytes());
            b[at + mac as usize..at + mac as usize + f.len()].copy_from_slice(f);
            at += next;
        }
        b[BLOCK_NUM_PKTS..BLOCK_NUM_PKTS + 4].copy_from_slice(&(frames.len() as u32).to_ne_bytes());
        b[BLOCK_FIRST_PKT..BLOCK_FIRST_PKT + 4].copy_from_slice(&(first as u32).to_ne_bytes());
        b[BLOCK_LEN..BLOCK_LEN + 4].copy_from_slice(&4096u32.to_ne_bytes());
        b
    }

    /// What `peek`/`consume` do over one held block.
    fn walk_block(b: &[u8], lt: Linktype, each: &mut impl FnMut(Frame<'_>)) -> (u64, u64) {
        let used = read_u32(b, BLOCK_LEN).map_or(0, |l| (l as usize).min(b.len()));
        let b = &b[..used];
        let mut at = read_u32(b, BLOCK_FIRST_PKT).unwrap() as usize;
        let (mut n, mut bytes) = (0, 0);
        for _ in 0..read_u32(b, BLOCK_NUM_PKTS).unwrap() {
            let Some((h, data)) = frame_at(b, at) else {
                break;
            };
            each(h.frame(lt, data));
            n += 1;
            bytes += u64::from(h.len);
            if h.next == 0 {
                break;
            }
            at += h.next as usize;
        }
        (n, bytes)
    }

    #[test]
    fn walks_the_frames_of_a_block() {
        let b = block(&[b"first frame", b"second", b"third one"], false);
        let mut got = Vec::new();
        let (n, bytes) = walk_block(&b, LINKTYPE_ETHERNET, &mut |f: Frame<'_>| {
            got.push((f.data.to_vec(), f.orig_len, f.ts));
        });
        assert_eq!(n, 3);
        assert_eq!(bytes, (11 + 4) + (6 + 4) + (9 + 4));
        assert_eq!(got[1].0, b"second");
        assert_eq!(got[0].2, Ts(7_000_000_005));
    }

    #[test]
    fn a_corrupt_block_ends_the_walk_inside_the_block() {
        let b = block(&[b"one", b"two"], true);
        let (n, _) = walk_block(&b, LINKTYPE_ETHERNET, &mut |_| {});
        assert_eq!(n, 1, "the second header lies outside the block");
        let mut lying = block(&[b"one"], false);
        lying[BLOCK_NUM_PKTS..BLOCK_NUM_PKTS + 4].copy_from_slice(&u32::MAX.to_ne_bytes());
        let (n, _) = walk_block(&lying, LINKTYPE_ETHERNET, &mut |_| {});
        assert_eq!(n, 1);
        let mut cut = block(&[b"one"], false);
        cut[48 + 12..48 + 16].copy_from_slice(&100_000u32.to_ne_bytes());
        assert_eq!(
            walk_block(&cut, LINKTYPE_ETHERNET, &mut |_| {}).0,
            0,
            "snaplen past the end"
        );
    }
}
