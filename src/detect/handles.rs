//! svcctl context handles per (source, target): what each handle stands for, learnt from the
//! responses that return them (OpenSCManager → SCM handle, OpenService / CreateService → service
//! handle) or, when no response was seen (a one-sided capture, lost packets), from the order of
//! calls on one conversation: the first unknown handle a later request uses is the one the call
//! still in flight would have returned.

use crate::flow::Uid;
use crate::time::Ts;

/// svcctl handles remembered per pair (OpenSCManager / OpenService / CreateService results).
pub const MAX_HANDLES: usize = 256;
/// Handle-returning calls without a seen response remembered per pair, waiting for the request
/// that uses their handle.
pub const MAX_UNANSWERED_OPENS: usize = 32;

/// What a context handle refers to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HandleOf {
    /// The service control manager (OpenSCManager).
    Scm,
    /// A service, by name (OpenService / CreateService).
    Service(String),
}

/// The kind of handle a request acts on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wants {
    Scm,
    Service,
}

impl HandleOf {
    fn is(&self, w: Wants) -> bool {
        matches!(
            (self, w),
            (HandleOf::Scm, Wants::Scm) | (HandleOf::Service(_), Wants::Service)
        )
    }
}

/// One DCE-RPC conversation: the connection and the pipe (None over TCP).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConvKey {
    pub uid: Uid,
    pub pipe: Option<String>,
}

#[derive(Clone, Debug)]
struct Known {
    handle: String,
    of: HandleOf,
}

#[derive(Clone, Debug)]
struct Unanswered {
    conv: ConvKey,
    of: HandleOf,
    ts: Ts,
}

/// Bounded handle table of one pair.
#[derive(Clone, Debug, Default)]
pub struct Handles {
    known: Vec<Known>,
    unanswered: Vec<Unanswered>,
}

impl Handles {
    /// A response returned `handle` for `of`.
    pub fn learn(&mut self, handle: &str, of: HandleOf) {
        self.known.retain(|k| k.handle != handle);
        if self.known.len() >= MAX_HANDLES {
            self.known.remove(0);
        }
        self.known.push(Known {
            handle: handle.to_string(),
            of,
        });
    }

    /// A call that returns a handle for `of` got no response (yet): its handle is whatever
    /// unknown handle the next request of the right kind on `conv` uses.
    pub fn opened_without_response(&mut self, conv: ConvKey, of: HandleOf, ts: Ts) {
        if self.unanswered.len() >= MAX_UNANSWERED_OPENS {
            self.unanswered.remove(0);
        }
        self.unanswered.push(Unanswered { conv, of, ts });
    }

    /// What `handle` refers to: known from a response, or else the latest call of the kind the
    /// request wants that is still in flight on the same conversation (then learnt).
    pub fn resolve(&mut self, conv: &ConvKey, handle: &str, wants: Wants) -> Option<HandleOf> {
        if let Some(k) = self.known.iter().find(|k| k.handle == handle) {
            return Some(k.of.clone());
        }
        let at = self
            .unanswered
            .iter()
            .rposition(|u| &u.conv == conv && u.of.is(wants))?;
        let u = self.unanswered.remove(at);
        self.learn(handle, u.of.clone());
        Some(u.of)
    }

    /// The service a handle names, if it is a known service handle.
    pub fn service(&self, handle: &str) -> Option<&str> {
        self.known.iter().find_map(|k| match &k.of {
            HandleOf::Service(n) if k.handle == handle => Some(n.as_str()),
            _ => None,
        })
    }

    /// Forget calls in flight older than `cut` (their handles will not be linked any more).
    pub fn expire(&mut self, cut: Ts) {
        self.unanswered.retain(|u| u.ts >= cut);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conv(uid: u64, pipe: &str) -> ConvKey {
        ConvKey {
            uid: Uid(uid),
            pipe: Some(pipe.into()),
        }
    }

    #[test]
    fn response_handles_resolve_directly() {
        let mut h = Handles::default();
        h.learn("aa", HandleOf::Service("Spooler".into()));
        let got = h.resolve(&conv(1, "svcctl"), "aa", Wants::Scm);
        assert_eq!(got, Some(HandleOf::Service("Spooler".into())));
        assert_eq!(h.service("aa"), Some("Spooler"));
        assert_eq!(h.service("bb"), None);
    }

    #[test]
    fn unanswered_opens_link_by_order_and_kind_on_their_conversation() {
        let mut h = Handles::default();
        let c = conv(1, "svcctl");
        h.opened_without_response(c.clone(), HandleOf::Scm, Ts(1));
        h.opened_without_response(c.clone(), HandleOf::Service("X".into()), Ts(2));
        // Another conversation's unknown handle links to nothing.
        assert_eq!(h.resolve(&conv(2, "svcctl"), "s1", Wants::Service), None);
        // The service call takes the service open, the SCM one the SCM open.
        assert_eq!(
            h.resolve(&c, "s1", Wants::Service),
            Some(HandleOf::Service("X".into()))
        );
        assert_eq!(h.resolve(&c, "m1", Wants::Scm), Some(HandleOf::Scm));
        // Learnt: later uses resolve without anything in flight.
        assert_eq!(h.service("s1"), Some("X"));
        assert_eq!(h.resolve(&c, "unknown", Wants::Service), None);
    }

    #[test]
    fn the_latest_call_in_flight_wins_and_expiry_forgets() {
        let mut h = Handles::default();
        let c = conv(1, "svcctl");
        h.opened_without_response(c.clone(), HandleOf::Service("old".into()), Ts(1));
        h.opened_without_response(c.clone(), HandleOf::Service("new".into()), Ts(5));
        assert!(h.service("h").is_none());
        assert_eq!(
            h.resolve(&c, "h", Wants::Service),
            Some(HandleOf::Service("new".into()))
        );
        h.expire(Ts(2));
        assert_eq!(h.resolve(&c, "g", Wants::Service), None);
    }

    #[test]
    fn tables_stay_bounded() {
        let mut h = Handles::default();
        for i in 0..(MAX_HANDLES * 2) {
            h.learn(&format!("{i}"), HandleOf::Scm);
            h.opened_without_response(conv(1, "p"), HandleOf::Scm, Ts(i as u64));
        }
        assert_eq!(h.known.len(), MAX_HANDLES);
        assert_eq!(h.unanswered.len(), MAX_UNANSWERED_OPENS);
    }
}
