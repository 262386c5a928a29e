//! Live capture (feature `live`): where frames come from on a span port or a tap.
//!
//! * [`afpacket`]: the default on Linux. One AF_PACKET socket with a TPACKET_V3 ring per worker
//!   and interface; the kernel spreads frames over the workers by host pair ([`fanout`]), and each
//!   worker's engine reads frames straight out of its ring.
//! * [`pcap`]: libpcap, one handle read by one capture thread (`--capture pcap`, `-i any`, and
//!   platforms without AF_PACKET).
//! * [`privileges`]: dropping root once everything is open.
//!
//! Signals: SIGINT/SIGTERM set the [`StopFlag`] (clean stop: every open attack is written),
//! SIGHUP sets the [`ReopenFlag`] (outputs are reopened; nothing else changes).

pub mod afpacket;
pub mod fanout;
pub mod pcap;
pub mod privileges;

pub use self::pcap::{KernelStats, LiveCapture, LiveConfig, Next, Read};
pub use privileges::{drop_privileges, user_exists, PrivilegeDrop};

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// What the sensor can parse: SMB (445, and 139 under NetBIOS), the endpoint mapper (135) and the
/// dynamic RPC range that the endpoint mapper hands out (svcctl, atsvc, task scheduler over TCP).
pub const DEFAULT_BPF: &str =
    "tcp port 445 or tcp port 139 or tcp port 135 or (tcp portrange 49152-65535)";

/// Bytes kept per frame: above any MTU and any offload-merged frame (GRO/LRO can hand up to 64 KiB
/// to a packet socket; libpcap's own default is 262144 for the same reason).
pub const SNAPLEN: i32 = 262_144;

/// Kernel ring size: a span port bursts; 64 MiB holds about half a second of 1 Gbit/s.
pub const KERNEL_BUFFER_BYTES: i32 = 64 << 20;

/// Longest wait in one read: bounds how late a stop request or a quiet-link stats tick is seen,
/// and how long a packet can sit in a partly filled kernel block when immediate mode is off.
pub const READ_TIMEOUT_MS: i32 = 100;

/// The capture filter `expr` compiled for a socket on a link of type `linktype`. Accepting
/// returns keep the whole frame (libpcap's compiler writes its own snaplen into them, which the
/// kernel would use to cut frames).
pub fn compile_filter(
    expr: &str,
    linktype: crate::capture::Linktype,
) -> Result<Vec<fanout::Insn>, LiveError> {
    let dead = ::pcap::Capture::dead(::pcap::Linktype(linktype as i32)).map_err(|source| {
        LiveError::Filter {
            expr: expr.to_string(),
            source,
        }
    })?;
    let prog = dead
        .compile(expr, true)
        .map_err(|source| LiveError::Filter {
            expr: expr.to_string(),
            source,
        })?;
    const RET_K: u16 = 0x06;
    Ok(prog
        .get_instructions()
        .iter()
        .map(|i| {
            // SAFETY: `BpfInstruction` is `#[repr(transparent)]` over libpcap's `struct bpf_insn`
            // (u16 code, u8 jt, u8 jf, u32 k), the layout of the kernel's `struct sock_filter`.
            let mut insn: fanout::Insn = unsafe { std::mem::transmute_copy(i) };
            if insn.code == RET_K && insn.k != 0 {
                insn.k = u32::MAX;
            }
            insn
        })
        .collect())
}

#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    #[error("cannot open interface {iface}: {source}")]
    Open {
        iface: String,
        source: ::pcap::Error,
    },
    #[error("bad BPF filter {expr:?}: {source}")]
    Filter { expr: String, source: ::pcap::Error },
    #[error("reading from {iface}: {source}")]
    Read {
        iface: String,
        source: ::pcap::Error,
    },
    #[error("kernel stats of {iface}: {source}")]
    Stats {
        iface: String,
        source: ::pcap::Error,
    },
    #[error("dropping privileges to {user}: {detail}")]
    Privileges { user: String, detail: String },
    #[error("installing signal handlers: {0}")]
    Signals(std::io::Error),
    #[error("{}", missing_privilege(iface))]
    NotPermitted { iface: String },
    #[error("no interface named {0:?}")]
    NoInterface(String),
    #[error("{iface}: {op}: {source}")]
    Socket {
        iface: String,
        op: &'static str,
        source: std::io::Error,
    },
    #[error("{iface}: {detail}")]
    Unsupported { iface: String, detail: String },
}

impl LiveError {
    /// A failed system call on `iface`; "not permitted" becomes the message naming the capabilities.
    pub fn from_os(iface: &str, op: &'static str, source: std::io::Error) -> LiveError {
        if matches!(
            source.raw_os_error(),
            Some(libc::EPERM) | Some(libc::EACCES)
        ) {
            return LiveError::NotPermitted {
                iface: iface.to_string(),
            };
        }
        LiveError::Socket {
            iface: iface.to_string(),
            op,
            source,
        }
    }

    /// libpcap's open error, with the same "not permitted" message as AF_PACKET's.
    pub fn from_pcap_open(iface: &str, source: ::pcap::Error) -> LiveError {
        let text = source.to_string();
        if text.contains("not permitted") || text.contains("ermission") {
            return LiveError::NotPermitted {
                iface: iface.to_string(),
            };
        }
        LiveError::Open {
            iface: iface.to_string(),
            source,
        }
    }
}

/// What an operator needs to read when capture is refused: which capabilities, and how to grant them.
fn missing_privilege(iface: &str) -> String {
    let exe = std::env::current_exe()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| "psexec-sensor".into());
    format!(
        "capturing on {iface} is not permitted: live capture needs CAP_NET_RAW (packet sockets) \
         and CAP_NET_ADMIN (promiscuous mode). Run as root (privileges are dropped to --user once \
         the interface is open), or grant them to the binary once and run it as any user: \
         `sudo setcap cap_net_raw,cap_net_admin=eip {exe}`; under systemd use \
         AmbientCapabilities=CAP_NET_RAW CAP_NET_ADMIN (packaging/psexec-sensor.service)"
    )
}

/// Set by SIGHUP: reopen every output file (after logrotate moved them). Cleared by whoever reopens.
#[derive(Clone, Debug, Default)]
pub struct ReopenFlag(Arc<AtomicBool>);

impl ReopenFlag {
    /// SIGHUP sets the flag instead of ending the process (its default action).
    pub fn install_signal_handler(&self) -> Result<(), LiveError> {
        signal_hook::flag::register(signal_hook::consts::SIGHUP, Arc::clone(&self.0))
            .map_err(LiveError::Signals)?;
        Ok(())
    }

    /// Whether a reopen was asked for since the last call.
    pub fn take(&self) -> bool {
        self.0.swap(false, Ordering::AcqRel)
    }
}

/// Set by SIGINT/SIGTERM (after [`StopFlag::install_signal_handlers`]) or by [`StopFlag::stop`];
/// cloned into every thread that must wind down.
#[derive(Clone, Debug, Default)]
pub struct StopFlag(Arc<AtomicBool>);

impl StopFlag {
    pub fn new() -> Self {
        StopFlag::default()
    }

    pub fn stop(&self) {
        self.0.store(true, Ordering::Release);
    }

    pub fn is_stopped(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }

    /// The shared flag itself, for code that takes an `Arc<AtomicBool>`.
    pub fn as_atomic(&self) -> &Arc<AtomicBool> {
        &self.0
    }

    /// SIGINT and SIGTERM set the flag (the sensor flushes and writes pending alerts). A second
    /// SIGINT while the flag is set exits at once with status 130 (an impatient Ctrl-C on a stuck
    /// flush); SIGTERM never does, because supervisors and wrappers such as `timeout` may deliver
    /// it twice in a row and must not cut the flush short (they follow up with SIGKILL anyway).
    pub fn install_signal_handlers(&self) -> Result<(), LiveError> {
        use signal_hook::consts::{SIGINT, SIGTERM};
        // Order matters: the conditional shutdown must see the flag before this signal sets it.
        signal_hook::flag::register_conditional_shutdown(SIGINT, 130, Arc::clone(&self.0))
            .map_err(LiveError::Signals)?;
        for sig in [SIGINT, SIGTERM] {
            signal_hook::flag::register(sig, Arc::clone(&self.0)).map_err(LiveError::Signals)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compiled_filter_keeps_whole_frames_and_rejects_nonsense() {
        let p = compile_filter(DEFAULT_BPF, crate::capture::LINKTYPE_ETHERNET).unwrap();
        assert!(p.iter().any(|i| i.code == 0x06 && i.k == u32::MAX));
        assert!(p.iter().any(|i| i.code == 0x06 && i.k == 0));
        assert!(matches!(
            compile_filter("tcp port", crate::capture::LINKTYPE_ETHERNET),
            Err(LiveError::Filter { .. })
        ));
    }

    #[test]
    fn not_permitted_names_the_capabilities_and_setcap() {
        let e = LiveError::from_os(
            "eth1",
            "socket",
            std::io::Error::from_raw_os_error(libc::EPERM),
        );
        let text = e.to_string();
        for needle in [
            "CAP_NET_RAW",
            "CAP_NET_ADMIN",
            "setcap",
            "eth1",
            "AmbientCapabilities",
        ] {
            assert!(text.contains(needle), "{needle} missing: {text}");
        }
        let other = LiveError::from_os(
            "eth1",
            "bind",
            std::io::Error::from_raw_os_error(libc::ENODEV),
        );
        assert!(matches!(other, LiveError::Socket { .. }));
    }
}
