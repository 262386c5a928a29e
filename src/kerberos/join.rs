//! The ticket → client join, where the workers' outputs merge.
//!
//! The KDC exchange (client ↔ KDC) and the session that presents its ticket (client ↔ server)
//! are different host pairs, so the pipeline's sharding may put them on different workers. The
//! merged output is in packet order whatever the number of workers, and a TGS-REP precedes the
//! AP-REQ that presents its ticket; so the join sits there, on the one thread that sees every
//! event in order, and `--workers 1` and `--workers N` give the same records. (Live capture with
//! kernel fanout has no global order: a reply and its AP-REQ that arrive on different workers
//! within one merge interval may be joined out of order, and the session then says `unseen`.)
//!
//! Bounded: at most [`MAX_KERBEROS_TICKETS`] tickets, each forgotten at its end time in capture
//! time; beyond the cap the ticket that expires first is forgotten first.

use super::TicketDigest;
use crate::event::{Event, IssuedTicket, UserSource};
use crate::sink::Sink;
use crate::time::Ts;
use crate::wire::maps::{shrink_if_sparse, KeyedMap};
use std::collections::BTreeSet;

/// Issued tickets remembered for the join.
pub const MAX_KERBEROS_TICKETS: usize = 65_536;

#[derive(Default)]
pub struct TicketJoin {
    tickets: KeyedMap<TicketDigest, IssuedTicket>,
    /// (expiry, digest) of every ticket in `tickets`: the next to forget first.
    by_expiry: BTreeSet<(Ts, u64)>,
    /// Latest capture time seen.
    now: Ts,
    caps_reached: u64,
    caps_reported: u64,
    pub joined: u64,
    pub unseen: u64,
}

impl TicketJoin {
    pub fn new() -> TicketJoin {
        TicketJoin::default()
    }

    /// One event in packet order: a KDC reply's ticket is remembered; an SMB session setup or
    /// DCE-RPC bind that presented a Kerberos ticket gets its client from it (or `unseen`).
    pub fn apply(&mut self, ev: &mut Event) {
        if let Some(c) = ev.conn() {
            self.now = self.now.max(c.ts);
        }
        match ev {
            Event::Kerberos(k) => {
                if let Some(t) = &k.issued {
                    self.remember(t.clone());
                }
            }
            // A ticket opened with `--keytab` named its client already: the stronger source.
            Event::SmbAuth(a) if a.user_source == Some(UserSource::Keytab) => {}
            Event::SmbAuth(a) => {
                if let Some(d) = a.ticket {
                    let (user, domain, source) = self.lookup(d);
                    if a.user.is_none() {
                        a.user = user;
                        a.domain = domain;
                    }
                    a.user_source = Some(source);
                }
            }
            Event::DceRpc(r) if r.principal.user_source == Some(UserSource::Keytab) => {}
            Event::DceRpc(r) => {
                if let Some(d) = r.principal.ticket {
                    let (user, domain, source) = self.lookup(d);
                    r.principal.user = user;
                    r.principal.domain = domain;
                    r.principal.user_source = Some(source);
                }
            }
            _ => {}
        }
    }

    /// The client a ticket was issued to, and how the sensor knows.
    fn lookup(&mut self, d: TicketDigest) -> (Option<String>, Option<String>, UserSource) {
        self.expire();
        match self.tickets.get(&d) {
            Some(t) => {
                self.joined += 1;
                (Some(t.user.clone()), Some(t.realm.clone()), t.source)
            }
            None => {
                self.unseen += 1;
                (None, None, UserSource::Unseen)
            }
        }
    }

    fn remember(&mut self, t: IssuedTicket) {
        self.expire();
        if t.expires <= self.now {
            return;
        }
        // The first reply that issued these bytes wins: a later copy (a replay, or a forgery
        // that reuses a real ticket under another name) does not rename its client.
        if self.tickets.contains_key(&t.digest) {
            return;
        }
        if self.tickets.len() >= MAX_KERBEROS_TICKETS {
            self.caps_reached += 1;
            if let Some(first) = self.by_expiry.pop_first() {
                self.tickets.remove(&TicketDigest(first.1));
            }
        }
        self.by_expiry.insert((t.expires, t.digest.0));
        self.tickets.insert(t.digest, t);
    }

    /// Forget the tickets whose end time has passed.
    fn expire(&mut self) {
        let mut forgot = false;
        while let Some(&(at, d)) = self.by_expiry.first() {
            if at > self.now {
                break;
            }
            self.by_expiry.pop_first();
            self.tickets.remove(&TicketDigest(d));
            forgot = true;
        }
        if forgot {
            shrink_if_sparse(&mut self.tickets);
        }
    }

    /// Tickets held now.
    pub fn len(&self) -> usize {
        self.tickets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tickets.is_empty()
    }

    /// Report the cap reached since the last call (one anomaly, then counted).
    pub fn report_caps(&mut self, sink: &mut Sink) {
        let delta = self.caps_reached - self.caps_reported;
        if delta == 0 {
            return;
        }
        sink.cap_reached(
            "MAX_KERBEROS_TICKETS",
            self.now,
            None,
            "kerberos",
            format!("{delta} issued tickets forgotten before their end time"),
        );
        if delta > 1 {
            sink.count("MAX_KERBEROS_TICKETS", delta - 1);
        }
        self.caps_reported = self.caps_reached;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{ConnFields, Kerberos, KrbRequestType, Principal, SmbAuth, SmbVersion};

    fn issued(d: u64, user: &str, expires: u64) -> Event {
        Event::Kerberos(Box::new(Kerberos {
            conn: ConnFields {
                ts: Ts::from_secs(1),
                ..Default::default()
            },
            request_type: KrbRequestType::Tgs,
            client: None,
            service: None,
            success: Some(true),
            error_msg: None,
            from: None,
            till: None,
            cipher: None,
            forwardable: None,
            renewable: None,
            transport: "tcp",
            issued: Some(IssuedTicket {
                digest: TicketDigest(d),
                user: user.into(),
                realm: "EXAMPLE.ORG".into(),
                source: UserSource::KerberosTgsRep,
                expires: Ts::from_secs(expires),
            }),
        }))
    }

    fn session(d: u64, at: u64) -> Event {
        Event::SmbAuth(SmbAuth {
            conn: ConnFields {
                ts: Ts::from_secs(at),
                ..Default::default()
            },
            session_id: Some(1),
            user: None,
            domain: None,
            workstation: None,
            auth: "kerberos",
            dialect: "SMB 2.1".into(),
            status: "STATUS_SUCCESS".into(),
            smb_version: SmbVersion::Smb2,
            user_source: None,
            ticket: Some(TicketDigest(d)),
        })
    }

    fn who(ev: &Event) -> (Option<String>, Option<String>, Option<UserSource>) {
        match ev {
            Event::SmbAuth(a) => (a.user.clone(), a.domain.clone(), a.user_source),
            Event::DceRpc(r) => {
                let Principal {
                    user,
                    domain,
                    user_source,
                    ..
                } = r.principal.clone();
                (user, domain, user_source)
            }
            _ => unreachable!(),
        }
    }

    #[test]
    fn a_seen_ticket_names_its_client_until_it_expires() {
        let mut j = TicketJoin::new();
        j.apply(&mut issued(7, "alice", 100));
        let mut s = session(7, 50);
        j.apply(&mut s);
        assert_eq!(
            who(&s),
            (
                Some("alice".into()),
                Some("EXAMPLE.ORG".into()),
                Some(UserSource::KerberosTgsRep)
            )
        );
        let mut other = session(8, 60);
        j.apply(&mut other);
        assert_eq!(who(&other), (None, None, Some(UserSource::Unseen)));
        // At its end time the ticket is forgotten.
        let mut late = session(7, 100);
        j.apply(&mut late);
        assert_eq!(who(&late).2, Some(UserSource::Unseen));
        assert!(j.is_empty());
        assert_eq!((j.joined, j.unseen), (1, 2));
    }

    #[test]
    fn the_first_issue_of_a_ticket_wins() {
        let mut j = TicketJoin::new();
        j.apply(&mut issued(7, "alice", 100));
        j.apply(&mut issued(7, "mallory", 100));
        let mut s = session(7, 2);
        j.apply(&mut s);
        assert_eq!(who(&s).0.as_deref(), Some("alice"));
    }

    #[test]
    fn the_cap_forgets_the_ticket_that_expires_first() {
        let mut j = TicketJoin::new();
        for d in 0..MAX_KERBEROS_TICKETS as u64 {
            j.apply(&mut issued(d, "u", 1000 + d));
        }
        assert_eq!(j.len(), MAX_KERBEROS_TICKETS);
        j.apply(&mut issued(u64::MAX, "late", 5000));
        assert_eq!(j.len(), MAX_KERBEROS_TICKETS);
        let mut first = session(0, 2);
        j.apply(&mut first);
        assert_eq!(who(&first).2, Some(UserSource::Unseen));
        let mut last = session(u64::MAX, 2);
        j.apply(&mut last);
        assert_eq!(who(&last).0.as_deref(), Some("late"));
        let mut sink = Sink::new();
        j.report_caps(&mut sink);
        assert_eq!(sink.counters.get("MAX_KERBEROS_TICKETS"), 1);
    }
}
