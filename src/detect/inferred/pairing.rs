//! Requests to responses without reading them: SMB2 answers requests in order for the clients that
//! matter here (one outstanding pipe call at a time), so responses pair first-in first-out with the
//! client messages of the same session. Two protocol facts keep the queue straight:
//! an async STATUS_PENDING interim response (an [`ERROR_RESPONSE`]-sized message) is followed by
//! the final response of the same request, and a CANCEL request gets no response.
//! What breaks it (documented): many requests in flight answered out of order, unsolicited oplock
//! or lease breaks, and multichannel sessions whose channels interleave.

use super::shapes::{CANCEL_REQUEST, ERROR_RESPONSE};
use crate::flow::Uid;
use crate::time::Ts;
use std::collections::VecDeque;

/// Requests of one session awaiting a response; beyond it the oldest is dropped (a pipelining
/// client, or a one-sided capture).
pub const MAX_PENDING_REQUESTS: usize = 64;

/// One opaque SMB message: plaintext size and when it was seen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Msg {
    pub ts: Ts,
    pub size: u32,
    pub uid: Uid,
}

/// A client message and the server message read as its response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pair {
    pub req: Msg,
    pub resp: Msg,
}

/// What the pairer reports besides pairs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PairNotes {
    /// A request was dropped because [`MAX_PENDING_REQUESTS`] were waiting.
    pub pending_cap: bool,
    /// A server message came with nothing to answer.
    pub orphan: bool,
}

#[derive(Debug, Default)]
pub struct Pairer {
    pending: VecDeque<Msg>,
    /// A request answered by an error-sized message: possibly an interim STATUS_PENDING whose final
    /// response is still to come, so held until the next message shows which.
    held: Option<Pair>,
}

impl Pairer {
    pub fn request(&mut self, m: Msg, out: &mut Vec<Pair>) -> PairNotes {
        let mut notes = PairNotes::default();
        self.flush(out);
        if self.pending.len() >= MAX_PENDING_REQUESTS {
            self.pending.pop_front();
            notes.pending_cap = true;
        }
        self.pending.push_back(m);
        notes
    }

    pub fn response(&mut self, m: Msg, out: &mut Vec<Pair>) -> PairNotes {
        let mut notes = PairNotes::default();
        // A CANCEL at the head of the queue is never answered: skip it when a later request is
        // waiting and this response is not CANCEL-sized itself (ECHO and friends answer 68 bytes).
        while self.pending.len() > 1
            && self
                .pending
                .front()
                .is_some_and(|f| f.size == CANCEL_REQUEST)
            && m.size != CANCEL_REQUEST
        {
            self.pending.pop_front();
        }
        match self.pending.pop_front() {
            Some(req) => {
                self.flush(out);
                let pair = Pair { req, resp: m };
                if m.size == ERROR_RESPONSE {
                    self.held = Some(pair);
                } else {
                    out.push(pair);
                }
            }
            None => match self.held.take() {
                // The final response after an interim one.
                Some(h) => out.push(Pair {
                    req: h.req,
                    resp: m,
                }),
                None => notes.orphan = true,
            },
        }
        notes
    }

    /// Give up waiting for a final response: the held pair stands as answered by an error.
    pub fn flush(&mut self, out: &mut Vec<Pair>) {
        if let Some(h) = self.held.take() {
            out.push(h);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(ts: u64, size: u32) -> Msg {
        Msg {
            ts: Ts(ts),
            size,
            uid: Uid(1),
        }
    }

    fn sizes(p: &[Pair]) -> Vec<(u32, u32)> {
        p.iter().map(|p| (p.req.size, p.resp.size)).collect()
    }

    #[test]
    fn in_order_pairs() {
        let mut p = Pairer::default();
        let mut out = vec![];
        p.request(m(1, 184), &mut out);
        p.response(m(2, 80), &mut out);
        p.request(m(3, 113), &mut out);
        p.response(m(4, 148), &mut out);
        assert_eq!(sizes(&out), vec![(184, 80), (113, 148)]);
    }

    #[test]
    fn interim_then_final_pairs_with_the_final() {
        let mut p = Pairer::default();
        let mut out = vec![];
        p.request(m(1, 113), &mut out);
        p.response(m(2, 73), &mut out);
        assert!(out.is_empty());
        p.response(m(3, 148), &mut out);
        assert_eq!(sizes(&out), vec![(113, 148)]);
        assert_eq!(out[0].resp.ts, Ts(3));
    }

    #[test]
    fn error_then_next_request_keeps_the_error() {
        let mut p = Pairer::default();
        let mut out = vec![];
        p.request(m(1, 160), &mut out);
        p.response(m(2, 73), &mut out);
        p.request(m(3, 68), &mut out);
        p.response(m(4, 68), &mut out);
        assert_eq!(sizes(&out), vec![(160, 73), (68, 68)]);
    }

    #[test]
    fn pipelined_requests_pair_in_order_and_cancel_is_skipped() {
        let mut p = Pairer::default();
        let mut out = vec![];
        p.request(m(1, 68), &mut out); // CANCEL
        p.request(m(2, 200), &mut out);
        p.request(m(3, 300), &mut out);
        p.response(m(4, 80), &mut out);
        p.response(m(5, 90), &mut out);
        assert_eq!(sizes(&out), vec![(200, 80), (300, 90)]);
    }

    #[test]
    fn orphan_and_cap_are_reported() {
        let mut p = Pairer::default();
        let mut out = vec![];
        assert!(p.response(m(1, 80), &mut out).orphan);
        let mut capped = false;
        for i in 0..=MAX_PENDING_REQUESTS as u64 {
            capped |= p.request(m(i, 100), &mut out).pending_cap;
        }
        assert!(capped);
        assert_eq!(p.pending.len(), MAX_PENDING_REQUESTS);
    }
}
