//! What the receiving endpoint would do with a segment before its bytes reach the stream: the
//! checks of RFC 9293 §3.10.7.4 as Linux applies them (`tcp_validate_incoming`, `tcp_ack`,
//! `tcp_data_queue`), so that a copy the endpoint throws away cannot blind the sensor (Ptacek &
//! Newsham's insertion). Each refusal is a typed anomaly and a counter; the segment then goes
//! no further (no reassembly, no ACK processing, no FIN, no RST, and it does not keep the flow
//! alive).

use crate::decode::checksum::{ChecksumAuto, ChecksumMode, SenderChecksums};
use crate::decode::TcpSegment;
use crate::event::AnomalyKind;

/// How far beyond the peer's last sequence number seen an ACK may point and still be believed
/// when the capture may have lost some of the peer's packets (its stream was picked up midway or
/// has a gap). A stack drops a segment acknowledging anything beyond SND.NXT (RFC 9293
/// §3.10.7.4, RFC 5961 §5.2; Linux `tcp_ack`: "If the ack includes data we haven't sent yet,
/// discard this segment"); when the sensor has seen the peer's every byte since its SYN it
/// applies that exactly, otherwise its idea of SND.NXT may lag by what the capture lost.
pub const ACK_AHEAD_SLACK: u32 = 1 << 20;

/// The largest window shift count (RFC 7323 §2.3: "If a Window Scale option is received with a
/// shift.cnt value larger than 14, the TCP SHOULD … use 14 instead"). Also the conservative
/// bound for a connection picked up without both SYNs: its scale is unknown, so the sensor takes
/// the widest window the header can mean and refuses only beyond it.
pub const LARGEST_WINDOW_SHIFT: u8 = 14;

/// What a sender's SYN said about window scaling.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum SynScale {
    /// Its SYN was not seen (picked up midstream, or lost by the capture).
    #[default]
    Unseen,
    Offered(u8),
    NotOffered,
}

/// The shift a sender's (non-SYN) window fields are scaled by: its own offer when both SYNs
/// carried the option, none when either SYN lacked it (RFC 7323 §2.2), and
/// [`LARGEST_WINDOW_SHIFT`] when a SYN was not seen.
pub fn window_shift(sender: &Sender, peer: &Sender) -> u8 {
    match (sender.syn_scale, peer.syn_scale) {
        (SynScale::Offered(s), SynScale::Offered(_)) => s.min(LARGEST_WINDOW_SHIFT),
        (SynScale::NotOffered, _) | (_, SynScale::NotOffered) => 0,
        _ => LARGEST_WINDOW_SHIFT,
    }
}

/// How a target treats a RST (configured per target, see [`super::policy`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RstPolicy {
    /// RFC 5961 §3.2 (Linux since 3.6, Windows since Vista era stacks): only a RST at exactly the
    /// next expected sequence number resets; one elsewhere in the window gets a challenge ACK and
    /// the connection goes on.
    #[default]
    ExactMatch,
    /// RFC 793: any RST inside the receive window resets.
    InWindow,
}

/// Why a segment was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    BadChecksum,
    DataWithoutAck,
    AcksUnsentData,
    BeyondWindow,
    DataAfterFin,
}

impl Refusal {
    /// Whether the sensor's reading may be wrong for a capture artifact (offloaded checksums,
    /// lost packets), so the segment is held for the receiver's ACK to settle
    /// ([`super::suspect`]) rather than dropped.
    pub fn may_be_capture_artifact(self) -> bool {
        matches!(
            self,
            Refusal::BadChecksum | Refusal::AcksUnsentData | Refusal::BeyondWindow
        )
    }

    pub fn kind(self) -> AnomalyKind {
        match self {
            Refusal::BadChecksum => AnomalyKind::BadChecksum,
            Refusal::DataWithoutAck | Refusal::AcksUnsentData => AnomalyKind::AckInvalid,
            Refusal::BeyondWindow => AnomalyKind::OutOfWindow,
            Refusal::DataAfterFin => AnomalyKind::DataAfterFin,
        }
    }
    pub fn detail(self) -> &'static str {
        match self {
            Refusal::BadChecksum => {
                "bad checksum from a sender whose checksums are validated: dropped"
            }
            Refusal::DataWithoutAck => "segment without the ACK flag on a connection: dropped",
            Refusal::AcksUnsentData => "segment acknowledges data the peer never sent: dropped",
            Refusal::BeyondWindow => {
                "segment starts beyond the receiver's advertised window: dropped"
            }
            Refusal::DataAfterFin => "data after the sender's FIN: dropped",
        }
    }
}

/// A sequence number once known: an `Option<u32>` without its padding (a flow holds six, and
/// [`super::table::MAX_FLOWS`] flows must fit their memory budget).
#[derive(Clone, Copy, Debug, Default)]
#[repr(C, packed)]
struct MaybeSeq {
    known: bool,
    seq: u32,
}

impl MaybeSeq {
    fn get(self) -> Option<u32> {
        self.known.then_some(self.seq)
    }
    fn set(&mut self, seq: u32) {
        *self = MaybeSeq { known: true, seq };
    }
}

/// One direction's sender as its receiver knows it.
#[derive(Clone, Copy, Debug, Default)]
pub struct Sender {
    pub checksums: ChecksumAuto,
    /// One past the highest sequence number this sender used (SYN and FIN count): its SND.NXT as
    /// far as the capture shows.
    snd_nxt: MaybeSeq,
    /// The last ACK number this sender sent: its RCV.NXT for the peer's bytes, as it said.
    last_ack: MaybeSeq,
    syn_scale: SynScale,
    /// The furthest right edge of the receive window this sender advertised (ACK + scaled
    /// window; a stack does not shrink its window, RFC 9293 §3.8.6.2.2, so the furthest one
    /// stands): the peer's data starting there or beyond is dropped.
    right_edge: MaybeSeq,
}

impl Sender {
    /// The first checks: checksum, the ACK flag and number, data after the FIN. `peer` is the
    /// other direction; `my_fin` the sequence number of this sender's first believed FIN.
    pub fn accept(
        &mut self,
        seg: &TcpSegment<'_>,
        peer: &Sender,
        peer_fully_seen: bool,
        my_fin: Option<u32>,
        mode: ChecksumMode,
    ) -> Result<(), Refusal> {
        if !self.checksums.keep(seg.checksum, mode) {
            return Err(Refusal::BadChecksum);
        }
        let carries = !seg.payload.is_empty() || seg.missing > 0;
        // RFC 9293 §3.10.7.4 fifth check: "if the ACK bit is off, drop the segment and return";
        // Linux `tcp_validate_incoming`/`tcp_rcv_established` discard !ACK && !RST && !SYN. A SYN
        // may carry data (TCP Fast Open); a RST is judged by its own rule.
        if carries && !seg.flags.ack && !seg.flags.syn && !seg.flags.rst {
            return Err(Refusal::DataWithoutAck);
        }
        if seg.flags.ack && !seg.flags.rst {
            if let Some(peer_nxt) = peer.snd_nxt.get() {
                let ahead = seg.ack.wrapping_sub(peer_nxt) as i32;
                let slack = if peer_fully_seen {
                    0
                } else {
                    ACK_AHEAD_SLACK as i32
                };
                if ahead > slack {
                    return Err(Refusal::AcksUnsentData);
                }
            }
        }
        if carries && !seg.flags.syn {
            // RFC 9293 §3.10.7.4 first check: a segment is unacceptable unless it starts before
            // RCV.NXT + RCV.WND; Linux `tcp_sequence` and `tcp_data_queue` ("out_of_window")
            // drop one starting at or beyond that edge, a zero window included.
            if let Some(edge) = peer.right_edge.get() {
                if seg.seq.wrapping_sub(edge) as i32 >= 0 {
                    return Err(Refusal::BeyondWindow);
                }
            }
        }
        if carries {
            if let Some(fin) = my_fin {
                // RFC 9293 §3.10.7.4 seventh step, CLOSE-WAIT and later: "This should not occur,
                // since a FIN has been received from the remote side. Ignore the segment text."
                if seg.seq.wrapping_sub(fin) as i32 >= 0 {
                    return Err(Refusal::DataAfterFin);
                }
            }
        }
        Ok(())
    }

    /// A believed segment: advance what this sender is known to have sent, and what it will
    /// receive. `shift` is its window scale ([`window_shift`]).
    pub fn sent(&mut self, seg: &TcpSegment<'_>, shift: u8) {
        let len = seg.payload.len() as u32 + seg.missing + seg.flags.syn as u32;
        self.sent_up_to(seg.seq.wrapping_add(len).wrapping_add(seg.flags.fin as u32));
        // The window of a SYN is never scaled (RFC 7323 §2.2).
        let shift = if seg.flags.syn {
            if self.syn_scale == SynScale::Unseen {
                self.syn_scale = seg.wscale.map_or(SynScale::NotOffered, SynScale::Offered);
            }
            0
        } else {
            shift
        };
        if seg.flags.ack {
            self.last_ack.set(seg.ack);
        }
        if seg.flags.ack && !seg.flags.rst {
            let edge = seg.ack.wrapping_add(u32::from(seg.window) << shift);
            match self.right_edge.get() {
                Some(e) if e.wrapping_sub(edge) as i32 > 0 => {}
                _ => self.right_edge.set(edge),
            }
        }
    }

    /// This sender is known to have sent everything before `end` (its own segment, or the
    /// peer's acknowledgement of it, once believed).
    pub fn sent_up_to(&mut self, end: u32) {
        match self.snd_nxt.get() {
            Some(n) if n.wrapping_sub(end) as i32 > 0 => {}
            _ => self.snd_nxt.set(end),
        }
    }

    pub fn last_ack(&self) -> Option<u32> {
        self.last_ack.get()
    }

    pub fn decision(&self) -> SenderChecksums {
        self.checksums.decision()
    }
}

#[cfg(test)]
mod tests;
