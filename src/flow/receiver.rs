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
    DataAfterFin,
}

impl Refusal {
    /// Whether the sensor's reading may be wrong for a capture artifact (offloaded checksums,
    /// lost packets), so the segment is held for the receiver's ACK to settle
    /// ([`super::suspect`]) rather than dropped.
    pub fn may_be_capture_artifact(self) -> bool {
        matches!(self, Refusal::BadChecksum | Refusal::AcksUnsentData)
    }

    pub fn kind(self) -> AnomalyKind {
        match self {
            Refusal::BadChecksum => AnomalyKind::BadChecksum,
            Refusal::DataWithoutAck | Refusal::AcksUnsentData => AnomalyKind::AckInvalid,
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
            Refusal::DataAfterFin => "data after the sender's FIN: dropped",
        }
    }
}

/// One direction's sender as its receiver knows it.
#[derive(Clone, Copy, Debug, Default)]
pub struct Sender {
    pub checksums: ChecksumAuto,
    /// One past the highest sequence number this sender used (SYN and FIN count): its SND.NXT as
    /// far as the capture shows.
    snd_nxt: Option<u32>,
    /// The last ACK number this sender sent: its RCV.NXT for the peer's bytes, as it said.
    last_ack: Option<u32>,
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
            if let Some(peer_nxt) = peer.snd_nxt {
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

    /// A believed segment: advance what this sender is known to have sent.
    pub fn sent(&mut self, seg: &TcpSegment<'_>) {
        let len = seg.payload.len() as u32 + seg.missing + seg.flags.syn as u32;
        self.sent_up_to(seg.seq.wrapping_add(len).wrapping_add(seg.flags.fin as u32));
        if seg.flags.ack {
            self.last_ack = Some(seg.ack);
        }
    }

    /// This sender is known to have sent everything before `end` (its own segment, or the
    /// peer's acknowledgement of it, once believed).
    pub fn sent_up_to(&mut self, end: u32) {
        self.snd_nxt = Some(match self.snd_nxt {
            Some(n) if n.wrapping_sub(end) as i32 > 0 => n,
            _ => end,
        });
    }

    pub fn last_ack(&self) -> Option<u32> {
        self.last_ack
    }

    pub fn decision(&self) -> SenderChecksums {
        self.checksums.decision()
    }
}

#[cfg(test)]
mod tests;
