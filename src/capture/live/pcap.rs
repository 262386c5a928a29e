//! Live capture from an interface through libpcap: the portable fallback (`--capture pcap`) and
//! the way to read `-i any`.
//!
//! The `live` command opens a [`LiveCapture`], drops root with `drop_privileges`, installs the
//! signal handlers of a [`StopFlag`] and pulls packets with [`LiveCapture::next_into`] (one reused
//! [`Packet`] buffer; `Read::Idle` at least every [`READ_TIMEOUT_MS`] on a quiet link, the moment
//! for stats ticks and idle-flow sweeps) until it returns `Read::Stopped`. [`LiveCapture::next_packet`]
//! and the `Iterator` impl give owned packets instead. A stop is seen within the read timeout even
//! on a silent link. [`LiveCapture::stats`] gives the kernel's counters
//! (received, dropped in the kernel buffer, dropped by the interface) widened to 64 bits.

use std::fmt;

use super::{LiveError, StopFlag, DEFAULT_BPF, KERNEL_BUFFER_BYTES, READ_TIMEOUT_MS, SNAPLEN};
use crate::capture::{Linktype, Packet};
use crate::time::Ts;

/// How to open the interface. `LiveConfig::new(iface)` gives the defaults above.
#[derive(Clone, Debug)]
pub struct LiveConfig {
    pub interface: String,
    /// BPF expression; `None` means [`DEFAULT_BPF`], `Some("")` means no filter.
    pub bpf: Option<String>,
    pub promiscuous: bool,
    pub snaplen: i32,
    pub buffer_bytes: i32,
    pub timeout_ms: i32,
    /// Deliver each packet at once instead of per filled kernel block. Costs throughput; the
    /// 100 ms timeout already bounds latency, so it is off by default.
    pub immediate: bool,
}

impl LiveConfig {
    pub fn new(interface: impl Into<String>) -> Self {
        LiveConfig {
            interface: interface.into(),
            bpf: None,
            promiscuous: true,
            snaplen: SNAPLEN,
            buffer_bytes: KERNEL_BUFFER_BYTES,
            timeout_ms: READ_TIMEOUT_MS,
            immediate: false,
        }
    }

    /// The filter actually applied (`None`: capture everything).
    pub fn effective_bpf(&self) -> Option<&str> {
        match self.bpf.as_deref() {
            None => Some(DEFAULT_BPF),
            Some(s) if s.trim().is_empty() => None,
            Some(s) => Some(s),
        }
    }
}

/// Kernel counters since the capture opened. libpcap's are 32-bit and wrap on a busy link; these
/// are widened by summing the wrapping differences between calls, so call
/// [`LiveCapture::stats`] at least every few seconds on a fast link (the stats tick does).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct KernelStats {
    /// Packets that passed the filter and reached the kernel buffer (Linux: including `dropped`).
    pub received: u64,
    /// Dropped because the kernel buffer was full: the sensor did not keep up.
    pub dropped: u64,
    /// Dropped by the interface or its driver before the kernel saw them.
    pub if_dropped: u64,
}

#[derive(Default)]
struct StatsWidener {
    last: (u32, u32, u32),
    total: KernelStats,
}

impl StatsWidener {
    fn update(&mut self, s: pcap::Stat) -> KernelStats {
        self.total.received += u64::from(s.received.wrapping_sub(self.last.0));
        self.total.dropped += u64::from(s.dropped.wrapping_sub(self.last.1));
        self.total.if_dropped += u64::from(s.if_dropped.wrapping_sub(self.last.2));
        self.last = (s.received, s.dropped, s.if_dropped);
        self.total
    }
}

/// An open interface.
pub struct LiveCapture {
    cap: pcap::Capture<pcap::Active>,
    /// The capture socket, owned by `cap`; only polled.
    fd: std::os::fd::RawFd,
    timeout_ms: i32,
    iface: String,
    linktype: Linktype,
    stop: StopFlag,
    stats: StatsWidener,
    nanos: bool,
}

impl fmt::Debug for LiveCapture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LiveCapture")
            .field("iface", &self.iface)
            .field("linktype", &self.linktype)
            .finish_non_exhaustive()
    }
}

impl LiveCapture {
    /// Opens `cfg.interface` (needs CAP_NET_RAW, normally root) and applies the filter before any
    /// packet is read. `stop` ends [`Self::next_packet`]; pass the flag the signal handlers set.
    pub fn open(cfg: &LiveConfig, stop: StopFlag) -> Result<Self, LiveError> {
        let open_err = |source| LiveError::from_pcap_open(&cfg.interface, source);
        let inactive = pcap::Capture::from_device(cfg.interface.as_str()).map_err(open_err)?;
        let inactive = inactive
            .promisc(cfg.promiscuous)
            .snaplen(cfg.snaplen)
            .buffer_size(cfg.buffer_bytes)
            .timeout(cfg.timeout_ms)
            .immediate_mode(cfg.immediate);
        // Nanosecond stamps where the kernel gives them; fall back to microseconds (still correct,
        // coarser) when the platform refuses.
        let (mut cap, nanos) = match inactive.precision(pcap::Precision::Nano).open() {
            Ok(c) => (c, true),
            Err(_) => {
                let again = pcap::Capture::from_device(cfg.interface.as_str())
                    .map_err(open_err)?
                    .promisc(cfg.promiscuous)
                    .snaplen(cfg.snaplen)
                    .buffer_size(cfg.buffer_bytes)
                    .timeout(cfg.timeout_ms)
                    .immediate_mode(cfg.immediate);
                (again.open().map_err(open_err)?, false)
            }
        };
        if let Some(expr) = cfg.effective_bpf() {
            cap.filter(expr, true).map_err(|source| LiveError::Filter {
                expr: expr.to_string(),
                source,
            })?;
        }
        let linktype = cap.get_datalink().0 as Linktype;
        let cap = cap.setnonblock().map_err(open_err)?;
        let fd = std::os::fd::AsRawFd::as_raw_fd(&cap);
        Ok(LiveCapture {
            fd,
            timeout_ms: cfg.timeout_ms.max(1),
            cap,
            iface: cfg.interface.clone(),
            linktype,
            stop,
            stats: StatsWidener::default(),
            nanos,
        })
    }

    /// LINKTYPE_* of the interface (Ethernet on most; LINUX_SLL on `any`).
    pub fn linktype(&self) -> Linktype {
        self.linktype
    }

    pub fn interface(&self) -> &str {
        &self.iface
    }

    pub fn stop_flag(&self) -> &StopFlag {
        &self.stop
    }

    /// The next packet; `Ok(None)` once the stop flag is set. Between packets it wakes every
    /// read timeout to look at the flag. Use [`Self::next_packet_or_idle`] to get those wake-ups.
    pub fn next_packet(&mut self) -> Result<Option<Packet>, LiveError> {
        loop {
            match self.next_packet_or_idle()? {
                Next::Packet(p) => return Ok(Some(p)),
                Next::Idle => continue,
                Next::Stopped => return Ok(None),
            }
        }
    }

    /// One read: a packet, `Idle` when the read timeout passed without one (time for a stats tick
    /// or a flow-timeout sweep on a quiet link), or `Stopped`.
    pub fn next_packet_or_idle(&mut self) -> Result<Next, LiveError> {
        let mut pkt = Packet {
            ts: Ts(0),
            linktype: self.linktype,
            orig_len: 0,
            data: Vec::new(),
        };
        Ok(match self.next_into(&mut pkt)? {
            Read::Packet => Next::Packet(pkt),
            Read::Idle => Next::Idle,
            Read::Stopped => Next::Stopped,
        })
    }

    /// Like [`Self::next_packet_or_idle`], but fills `pkt` in place, reusing its buffer (as
    /// `capture::file::CaptureReader::next_packet` does): `pkt` holds a new frame only when this
    /// returns [`Read::Packet`].
    ///
    /// The handle is non-blocking and the wait is our own `poll` with the read timeout: libpcap's
    /// TPACKET_V3 reader would otherwise block without limit on a silent link (the kernel only
    /// retires blocks that hold packets), and a stop request would go unseen.
    pub fn next_into(&mut self, pkt: &mut Packet) -> Result<Read, LiveError> {
        if self.stop.is_stopped() {
            return Ok(Read::Stopped);
        }
        if self.read_ready(pkt)? {
            return Ok(Read::Packet);
        }
        self.wait_readable();
        if self.stop.is_stopped() {
            return Ok(Read::Stopped);
        }
        Ok(if self.read_ready(pkt)? {
            Read::Packet
        } else {
            Read::Idle
        })
    }

    /// Copies a packet the kernel has already handed over into `pkt`, if any; never waits.
    fn read_ready(&mut self, pkt: &mut Packet) -> Result<bool, LiveError> {
        let nanos = self.nanos;
        match self.cap.next_packet() {
            Ok(p) => {
                pkt.ts = ts_of(&p.header.ts, nanos);
                pkt.linktype = self.linktype;
                pkt.orig_len = p.header.len;
                pkt.data.clear();
                pkt.data.extend_from_slice(p.data);
                Ok(true)
            }
            Err(pcap::Error::TimeoutExpired) => Ok(false),
            // A signal can interrupt a read; the caller looks at the stop flag next.
            Err(pcap::Error::PcapError(ref m)) if m.contains("Interrupted system call") => {
                Ok(false)
            }
            Err(source) => Err(LiveError::Read {
                iface: self.iface.clone(),
                source,
            }),
        }
    }

    /// Waits until the capture socket is readable, the timeout passes or a signal arrives.
    fn wait_readable(&self) {
        let mut pfd = libc::pollfd {
            fd: self.fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd, count 1. The result needs no handling: every outcome (ready,
        // timeout, EINTR, error) is followed by a non-blocking read that reports real errors.
        unsafe {
            libc::poll(&mut pfd, 1, self.timeout_ms);
        }
    }

    /// Kernel counters since open (see [`KernelStats`]).
    pub fn stats(&mut self) -> Result<KernelStats, LiveError> {
        let s = self.cap.stats().map_err(|source| LiveError::Stats {
            iface: self.iface.clone(),
            source,
        })?;
        Ok(self.stats.update(s))
    }
}

/// With nanosecond precision libpcap puts nanoseconds in `tv_usec`.
fn ts_of(tv: &libc::timeval, nanos: bool) -> Ts {
    let secs = u64::try_from(tv.tv_sec).unwrap_or(0);
    let frac = u64::try_from(tv.tv_usec).unwrap_or(0);
    let frac_ns = if nanos {
        frac
    } else {
        frac.saturating_mul(1_000)
    };
    Ts(secs.saturating_mul(1_000_000_000).saturating_add(frac_ns))
}

/// What one [`LiveCapture::next_into`] gave.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Read {
    /// The packet buffer holds a new frame.
    Packet,
    /// The read timeout passed without a frame.
    Idle,
    /// The stop flag is set.
    Stopped,
}

/// What one [`LiveCapture::next_packet_or_idle`] gave.
#[derive(Debug)]
pub enum Next {
    Packet(Packet),
    Idle,
    Stopped,
}

impl Iterator for LiveCapture {
    type Item = Result<Packet, LiveError>;
    /// Packets until stopped; a read error is yielded once and ends the iteration.
    fn next(&mut self) -> Option<Self::Item> {
        match self.next_packet() {
            Ok(Some(p)) => Some(Ok(p)),
            Ok(None) => None,
            Err(e) => {
                self.stop.stop();
                Some(Err(e))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_filter_and_overrides() {
        let mut c = LiveConfig::new("eth0");
        assert_eq!(c.effective_bpf(), Some(DEFAULT_BPF));
        assert!(c.snaplen >= 65_535);
        c.bpf = Some("tcp port 445".into());
        assert_eq!(c.effective_bpf(), Some("tcp port 445"));
        c.bpf = Some("  ".into());
        assert_eq!(c.effective_bpf(), None);
    }

    #[test]
    fn default_filter_compiles_and_selects_smb_and_rpc() {
        // Compiled against a dead Ethernet handle: no privileges or interface needed.
        let dead = pcap::Capture::dead(pcap::Linktype::ETHERNET).unwrap();
        let prog = dead.compile(DEFAULT_BPF, true).unwrap();
        let frame = |sport: u16, dport: u16, proto: u8| {
            let mut f = vec![0u8; 14 + 20 + 20];
            f[12] = 0x08; // IPv4
            f[14] = 0x45;
            f[16..18].copy_from_slice(&40u16.to_be_bytes());
            f[22] = 64;
            f[23] = proto;
            f[34..36].copy_from_slice(&sport.to_be_bytes());
            f[36..38].copy_from_slice(&dport.to_be_bytes());
            f[46] = 0x50;
            f
        };
        assert!(prog.filter(&frame(50000, 445, 6)));
        assert!(prog.filter(&frame(445, 40000, 6)));
        assert!(prog.filter(&frame(40000, 139, 6)));
        assert!(prog.filter(&frame(40000, 135, 6)));
        assert!(prog.filter(&frame(40000, 49667, 6)));
        assert!(!prog.filter(&frame(40000, 80, 6)));
        assert!(!prog.filter(&frame(40000, 445, 17)), "UDP is not SMB");
    }

    #[test]
    fn stats_widen_across_u32_wrap() {
        let mut w = StatsWidener::default();
        let s = |r, d| pcap::Stat {
            received: r,
            dropped: d,
            if_dropped: 0,
        };
        assert_eq!(
            w.update(s(u32::MAX - 1, 3)).received,
            u64::from(u32::MAX - 1)
        );
        let t = w.update(s(5, 4));
        assert_eq!(t.received, u64::from(u32::MAX) + 6);
        assert_eq!(t.dropped, 4);
    }

    #[test]
    fn timestamps_in_both_precisions() {
        let tv = libc::timeval {
            tv_sec: 1_700_000_000,
            tv_usec: 123_456,
        };
        assert_eq!(ts_of(&tv, false), Ts(1_700_000_000_123_456_000));
        assert_eq!(ts_of(&tv, true), Ts(1_700_000_000_000_123_456));
        let before_epoch = libc::timeval {
            tv_sec: -1,
            tv_usec: 0,
        };
        assert_eq!(ts_of(&before_epoch, false), Ts(0));
    }
}
