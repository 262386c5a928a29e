//! The SMB3 multichannel registry: what one connection (channel) of a session tells the others
//! about the session's trees and handles, so a file opened on one channel and written on another
//! keeps its name. Shared by the SMB parsers of one worker.
//!
//! Keyed by session (server address, SessionId) so unrelated servers never mix. A session lives
//! here while at least one connection uses it: a connection joins a session the first time it
//! sees its SessionId (SESSION_SETUP, a binding, any message) and leaves every session it joined
//! when it ends (its parser's close, or the parser dropped on any other path: [`Channel`]'s
//! `Drop`). The last connection leaving drops the session with its names, so the registry is
//! flat in capture size; TREE_DISCONNECT and LOGOFF withdraw names earlier.
//!
//! Hashing: the keys are attacker-chosen (SessionId, TreeId, FileId from the wire), so these
//! are [`KeyedMap`]s, the policy of [`crate::wire::maps`].

use crate::sink::Sink;
use crate::smb::tables::{Cx, Tree};
use crate::wire::maps::{shrink_if_sparse, KeyedMap};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// Trees and handles remembered across all the sessions of one worker. Reaching it empties the
/// names (sessions and their connections stay): a live sensor must not refuse for ever.
pub const MAX_SHARED_HANDLES: usize = 65_536;
/// Sessions tracked across the connections of one worker. Beyond it a new session is not shared
/// (its channels still work alone); sessions leave as their connections end.
pub const MAX_SHARED_SESSIONS: usize = 16_384;
/// Sessions one connection joins; a connection naming more SessionIds (hostile, or garbage after
/// a resync) shares only the first ones.
pub const MAX_SESSIONS_JOINED: usize = crate::smb::tables::MAX_SMB_SESSIONS;

/// One session's shared names and how many connections use it.
#[derive(Debug, Default)]
struct SharedSession {
    connections: usize,
    trees: KeyedMap<u32, Tree>,
    handles: KeyedMap<u128, (String, u32)>,
}

impl SharedSession {
    fn names(&self) -> usize {
        self.trees.len() + self.handles.len()
    }
}

/// The registry proper (behind [`SharedRegistry`]'s lock).
#[derive(Debug, Default)]
pub struct SharedNames {
    sessions: KeyedMap<(IpAddr, u64), SharedSession>,
    /// Trees plus handles over every session, against [`MAX_SHARED_HANDLES`].
    names: usize,
}

/// The registry shared by the SMB parsers of one worker.
pub type SharedRegistry = Arc<Mutex<SharedNames>>;

/// What a handle published elsewhere resolves to: its name, its TreeId, and its tree if known.
pub type SharedHandle = (String, u32, Option<Tree>);

impl SharedNames {
    /// Sessions tracked (tests, metrics).
    pub fn sessions(&self) -> usize {
        self.sessions.len()
    }
    /// Trees plus handles remembered (tests, metrics).
    pub fn names(&self) -> usize {
        self.names
    }

    /// Counts a connection into a session, creating it within [`MAX_SHARED_SESSIONS`].
    fn join(&mut self, key: (IpAddr, u64)) -> bool {
        if let Some(s) = self.sessions.get_mut(&key) {
            s.connections += 1;
            return true;
        }
        if self.sessions.len() >= MAX_SHARED_SESSIONS {
            return false;
        }
        self.sessions.insert(
            key,
            SharedSession {
                connections: 1,
                ..SharedSession::default()
            },
        );
        true
    }

    /// A connection that joined `key` ended: the last one drops the session.
    fn leave(&mut self, key: (IpAddr, u64)) {
        let Some(s) = self.sessions.get_mut(&key) else {
            return;
        };
        s.connections = s.connections.saturating_sub(1);
        if s.connections == 0 {
            self.drop_names(key);
            self.sessions.remove(&key);
            if self.sessions.is_empty() {
                // A burst of sessions is over: give its table's memory back.
                self.sessions = KeyedMap::default();
            }
        }
    }

    /// Withdraws every name of a session (LOGOFF); its connections stay counted.
    fn drop_names(&mut self, key: (IpAddr, u64)) {
        if let Some(s) = self.sessions.get_mut(&key) {
            self.names = self.names.saturating_sub(s.names());
            s.trees = KeyedMap::default();
            s.handles = KeyedMap::default();
        }
    }

    /// Room for one more name, emptying every session's names when the cap is reached.
    fn make_room(&mut self, cx: &Cx<'_>, what: &'static str, sink: &mut Sink) {
        if self.names >= MAX_SHARED_HANDLES {
            // Start over rather than refuse forever (a live sensor runs for months).
            sink.cap_reached("MAX_SHARED_HANDLES", cx.ts, Some(cx.conn()), cx.layer, what);
            for s in self.sessions.values_mut() {
                s.trees = KeyedMap::default();
                s.handles = KeyedMap::default();
            }
            self.names = 0;
        }
    }

    fn publish_tree(
        &mut self,
        cx: &Cx<'_>,
        key: (IpAddr, u64),
        tid: u32,
        tree: &Tree,
        sink: &mut Sink,
    ) {
        if !self.sessions.contains_key(&key) {
            return;
        }
        self.make_room(cx, "trees", sink);
        let Some(s) = self.sessions.get_mut(&key) else {
            return;
        };
        if s.trees.insert(tid, tree.clone()).is_none() {
            self.names += 1;
        }
    }

    fn publish_handle(
        &mut self,
        cx: &Cx<'_>,
        key: (IpAddr, u64),
        id: u128,
        name_tree: (String, u32),
        sink: &mut Sink,
    ) {
        let Some(s) = self.sessions.get(&key) else {
            return;
        };
        if !s.handles.contains_key(&id) {
            self.make_room(cx, "handles", sink);
        }
        let Some(s) = self.sessions.get_mut(&key) else {
            return;
        };
        if s.handles.insert(id, name_tree).is_none() {
            self.names += 1;
        }
    }

    fn withdraw_handle(&mut self, key: (IpAddr, u64), id: u128) {
        let Some(s) = self.sessions.get_mut(&key) else {
            return;
        };
        if s.handles.remove(&id).is_some() {
            self.names = self.names.saturating_sub(1);
            shrink_if_sparse(&mut s.handles);
        }
    }

    /// A tree is gone, and with it the handles opened on it.
    fn withdraw_tree(&mut self, key: (IpAddr, u64), tid: u32) {
        let Some(s) = self.sessions.get_mut(&key) else {
            return;
        };
        let before = s.names();
        s.trees.remove(&tid);
        s.handles.retain(|_, (_, t)| *t != tid);
        self.names = self.names.saturating_sub(before - s.names());
        shrink_if_sparse(&mut s.handles);
        shrink_if_sparse(&mut s.trees);
    }

    fn lookup_handle(&self, key: (IpAddr, u64), id: u128) -> Option<SharedHandle> {
        let s = self.sessions.get(&key)?;
        let (name, tid) = s.handles.get(&id)?;
        Some((name.clone(), *tid, s.trees.get(tid).cloned()))
    }
}

/// One connection's membership in the registry: the sessions it joined, left when it ends.
#[derive(Debug)]
pub struct Channel {
    registry: SharedRegistry,
    /// The connection's server address (all its sessions are on it), known at the first join.
    server: Option<IpAddr>,
    /// SessionIds seen on this connection, and whether the registry counted us in (false: its
    /// session cap refused).
    joined: Vec<(u64, bool)>,
    /// [`MAX_SESSIONS_JOINED`] was reported for this connection.
    over_cap: bool,
}

impl Channel {
    pub fn new(registry: SharedRegistry) -> Channel {
        Channel {
            registry,
            server: None,
            joined: Vec::new(),
            over_cap: false,
        }
    }

    fn key(cx: &Cx<'_>, sid: u64) -> (IpAddr, u64) {
        (cx.flow.conn.resp_h, sid)
    }

    /// This connection uses session `sid` (called for every message; cheap once joined).
    pub fn join(&mut self, cx: &Cx<'_>, sid: u64, sink: &mut Sink) {
        if sid == 0 || sid == u64::MAX || self.joined.iter().any(|(s, _)| *s == sid) {
            return;
        }
        if self.joined.len() >= MAX_SESSIONS_JOINED {
            if !self.over_cap {
                self.over_cap = true;
                sink.cap_reached(
                    "MAX_SESSIONS_JOINED",
                    cx.ts,
                    Some(cx.conn()),
                    cx.layer,
                    format!("session {sid:#x} not shared across channels"),
                );
            }
            return;
        }
        let Ok(mut g) = self.registry.lock() else {
            return;
        };
        self.server = Some(cx.flow.conn.resp_h);
        let counted = g.join(Self::key(cx, sid));
        if !counted {
            sink.cap_reached(
                "MAX_SHARED_SESSIONS",
                cx.ts,
                Some(cx.conn()),
                cx.layer,
                format!("session {sid:#x} not shared across channels"),
            );
        }
        self.joined.push((sid, counted));
    }

    /// Publishes a tree for the other channels of the session.
    pub fn publish_tree(&mut self, cx: &Cx<'_>, sid: u64, tid: u32, tree: &Tree, sink: &mut Sink) {
        self.join(cx, sid, sink);
        let Ok(mut g) = self.registry.lock() else {
            return;
        };
        g.publish_tree(cx, Self::key(cx, sid), tid, tree, sink);
    }

    /// Publishes a handle's name and TreeId for the other channels of the session.
    pub fn publish_handle(
        &mut self,
        cx: &Cx<'_>,
        sid: u64,
        id: u128,
        name: String,
        tid: u32,
        sink: &mut Sink,
    ) {
        self.join(cx, sid, sink);
        let Ok(mut g) = self.registry.lock() else {
            return;
        };
        g.publish_handle(cx, Self::key(cx, sid), id, (name, tid), sink);
    }

    /// CLOSE: the handle is gone on every channel.
    pub fn withdraw_handle(&self, cx: &Cx<'_>, sid: u64, id: u128) {
        let Ok(mut g) = self.registry.lock() else {
            return;
        };
        g.withdraw_handle(Self::key(cx, sid), id);
    }

    /// TREE_DISCONNECT: the tree and its handles are gone on every channel.
    pub fn withdraw_tree(&self, cx: &Cx<'_>, sid: u64, tid: u32) {
        let Ok(mut g) = self.registry.lock() else {
            return;
        };
        g.withdraw_tree(Self::key(cx, sid), tid);
    }

    /// LOGOFF: the session's names are gone on every channel.
    pub fn logoff(&self, cx: &Cx<'_>, sid: u64) {
        let Ok(mut g) = self.registry.lock() else {
            return;
        };
        g.drop_names(Self::key(cx, sid));
    }

    /// A handle another channel of the session published.
    pub fn lookup_handle(&self, cx: &Cx<'_>, sid: u64, id: u128) -> Option<SharedHandle> {
        let g = self.registry.lock().ok()?;
        g.lookup_handle(Self::key(cx, sid), id)
    }

    /// The connection ended: it leaves every session it joined.
    pub fn leave_all(&mut self) {
        let (Some(server), false) = (self.server, self.joined.is_empty()) else {
            return;
        };
        let joined = std::mem::take(&mut self.joined);
        // A poisoned lock still holds consistent counts (no update panics half-way).
        let mut g = match self.registry.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        for (sid, counted) in joined {
            if counted {
                g.leave((server, sid));
            }
        }
    }
}

impl Drop for Channel {
    /// However the connection ends (close, reset, eviction, or a parser simply dropped), its
    /// sessions do not outlive it on its account.
    fn drop(&mut self) {
        self.leave_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::{ConnId, FlowCtx, Uid};
    use crate::smb::tables::ShareType;
    use crate::time::Ts;

    const SID: u64 = 0x1c00_1000_0049;

    /// A connection from client port `port` to 192.0.2.20:445.
    fn flow(port: u16) -> FlowCtx {
        let conn = ConnId {
            orig_h: "192.0.2.10".parse().unwrap(),
            orig_p: port,
            resp_h: "192.0.2.20".parse().unwrap(),
            resp_p: 445,
        };
        FlowCtx {
            conn,
            uid: Uid::new(&conn, u64::from(port)),
        }
    }

    fn cx(f: &FlowCtx) -> Cx<'_> {
        Cx::smb2(f, Ts::from_secs(1))
    }

    fn admin() -> Tree {
        Tree::new("\\\\192.0.2.20\\ADMIN$", ShareType::Disk)
    }

    fn counts(r: &SharedRegistry) -> (usize, usize) {
        let g = r.lock().unwrap();
        (g.sessions(), g.names())
    }

    /// Channel A publishes tree 2 and handle 0x77 on it.
    fn published(r: &SharedRegistry, fa: &FlowCtx, sink: &mut Sink) -> Channel {
        let mut a = Channel::new(r.clone());
        a.join(&cx(fa), SID, sink);
        a.publish_tree(&cx(fa), SID, 2, &admin(), sink);
        a.publish_handle(&cx(fa), SID, 0x77, "up.exe".into(), 2, sink);
        a
    }

    #[test]
    fn second_channel_resolves_after_the_first_closed_and_the_last_close_empties() {
        let r = SharedRegistry::default();
        let mut sink = Sink::new();
        let (fa, fb) = (flow(57092), flow(57093));
        let mut a = published(&r, &fa, &mut sink);
        let mut b = Channel::new(r.clone());
        b.join(&cx(&fb), SID, &mut sink);
        assert_eq!(counts(&r), (1, 2));
        a.leave_all();
        let (name, tid, tree) = b
            .lookup_handle(&cx(&fb), SID, 0x77)
            .expect("still shared through B");
        assert_eq!(
            (name.as_str(), tid, tree.map(|t| t.share)),
            ("up.exe", 2, Some("ADMIN$".to_string()))
        );
        b.leave_all();
        assert_eq!(
            counts(&r),
            (0, 0),
            "the last connection took the session with it"
        );
        assert!(b.lookup_handle(&cx(&fb), SID, 0x77).is_none());
    }

    #[test]
    fn a_dropped_connection_leaves_without_saying_goodbye() {
        let r = SharedRegistry::default();
        let mut sink = Sink::new();
        let a = published(&r, &flow(1), &mut sink);
        assert_eq!(counts(&r), (1, 2));
        drop(a);
        assert_eq!(counts(&r), (0, 0));
    }

    #[test]
    fn a_connection_joins_once_however_many_messages() {
        let r = SharedRegistry::default();
        let mut sink = Sink::new();
        let (fa, fb) = (flow(1), flow(2));
        let mut a = Channel::new(r.clone());
        for _ in 0..10 {
            a.join(&cx(&fa), SID, &mut sink);
        }
        let mut b = Channel::new(r.clone());
        b.join(&cx(&fb), SID, &mut sink);
        a.leave_all();
        assert_eq!(counts(&r).0, 1, "B still uses the session");
        drop(b);
        assert_eq!(counts(&r).0, 0);
    }

    #[test]
    fn the_same_session_id_on_another_server_is_another_session() {
        let r = SharedRegistry::default();
        let mut sink = Sink::new();
        let fa = flow(1);
        let _a = published(&r, &fa, &mut sink);
        let mut other = flow(2);
        other.conn.resp_h = "192.0.2.99".parse().unwrap();
        let mut b = Channel::new(r.clone());
        b.join(&cx(&other), SID, &mut sink);
        assert!(b.lookup_handle(&cx(&other), SID, 0x77).is_none());
        assert_eq!(counts(&r).0, 2);
    }

    #[test]
    fn logoff_withdraws_the_sessions_names() {
        let r = SharedRegistry::default();
        let mut sink = Sink::new();
        let fa = flow(1);
        let a = published(&r, &fa, &mut sink);
        a.logoff(&cx(&fa), SID);
        assert!(a.lookup_handle(&cx(&fa), SID, 0x77).is_none());
        assert_eq!(
            counts(&r),
            (1, 0),
            "names gone; the session stays while A lives"
        );
        drop(a);
        assert_eq!(counts(&r), (0, 0));
    }

    #[test]
    fn tree_disconnect_withdraws_the_tree_and_its_handles_only() {
        let r = SharedRegistry::default();
        let mut sink = Sink::new();
        let fa = flow(1);
        let mut a = published(&r, &fa, &mut sink);
        a.publish_tree(
            &cx(&fa),
            SID,
            1,
            &Tree::new("\\\\192.0.2.20\\IPC$", ShareType::Pipe),
            &mut sink,
        );
        a.publish_handle(&cx(&fa), SID, 0x88, "svcctl".into(), 1, &mut sink);
        assert_eq!(counts(&r), (1, 4));
        a.withdraw_tree(&cx(&fa), SID, 2);
        assert!(a.lookup_handle(&cx(&fa), SID, 0x77).is_none());
        let (name, _, tree) = a.lookup_handle(&cx(&fa), SID, 0x88).unwrap();
        assert_eq!(
            (name.as_str(), tree.map(|t| t.share_type)),
            ("svcctl", Some(ShareType::Pipe))
        );
        assert_eq!(counts(&r), (1, 2));
        a.withdraw_handle(&cx(&fa), SID, 0x88);
        assert_eq!(counts(&r), (1, 1));
    }

    #[test]
    fn thousands_of_sessions_opened_and_closed_leave_it_empty() {
        let r = SharedRegistry::default();
        let mut sink = Sink::new();
        let mut live = Vec::new();
        for i in 0..5_000u16 {
            let f = flow(1000 + i);
            let sid = 0x1000 + u64::from(i);
            let mut c = Channel::new(r.clone());
            c.join(&cx(&f), sid, &mut sink);
            c.publish_tree(&cx(&f), sid, 1, &admin(), &mut sink);
            for h in 0..4u128 {
                c.publish_handle(&cx(&f), sid, h, format!("f{h}"), 1, &mut sink);
            }
            // Some close their handles, some never do.
            if i % 2 == 0 {
                c.withdraw_handle(&cx(&f), sid, 0);
            }
            live.push(c);
            if live.len() > 8 {
                live.remove(0).leave_all();
            }
        }
        assert!(counts(&r).0 <= 8);
        live.clear();
        assert_eq!(counts(&r), (0, 0));
        assert_eq!(
            r.lock().unwrap().sessions.capacity(),
            0,
            "memory given back"
        );
        assert_eq!(
            sink.counters.get("MAX_SHARED_HANDLES") + sink.counters.get("MAX_SHARED_SESSIONS"),
            0
        );
    }

    #[test]
    fn the_handle_cap_still_holds() {
        let r = SharedRegistry::default();
        let mut sink = Sink::new();
        let fa = flow(1);
        let mut a = Channel::new(r.clone());
        for id in 0..(MAX_SHARED_HANDLES as u128 + 10) {
            a.publish_handle(&cx(&fa), SID, id, String::new(), 2, &mut sink);
            assert!(counts(&r).1 <= MAX_SHARED_HANDLES);
        }
        assert_eq!(sink.counters.get("MAX_SHARED_HANDLES"), 1);
        assert_eq!(
            counts(&r),
            (1, 10),
            "emptied once at the cap, then refilled"
        );
        // The session and its connection count survive the emptying.
        assert!(a
            .lookup_handle(&cx(&fa), SID, MAX_SHARED_HANDLES as u128 + 9)
            .is_some());
        drop(a);
        assert_eq!(counts(&r), (0, 0));
    }

    #[test]
    fn the_session_caps_hold() {
        let r = SharedRegistry::default();
        let mut sink = Sink::new();
        // One connection naming ever more SessionIds joins only MAX_SESSIONS_JOINED of them.
        let f = flow(1);
        let mut a = Channel::new(r.clone());
        for sid in 1..=(MAX_SESSIONS_JOINED as u64 + 50) {
            a.join(&cx(&f), sid, &mut sink);
        }
        assert_eq!(counts(&r).0, MAX_SESSIONS_JOINED);
        assert_eq!(sink.counters.get("MAX_SESSIONS_JOINED"), 1);
        drop(a);
        // Many connections each with a session: at most MAX_SHARED_SESSIONS shared.
        let mut chans = Vec::new();
        for i in 0..(MAX_SHARED_SESSIONS / MAX_SESSIONS_JOINED + 1) {
            let f = flow(i as u16);
            let mut c = Channel::new(r.clone());
            for j in 0..MAX_SESSIONS_JOINED as u64 {
                c.join(&cx(&f), (i as u64) << 16 | (j + 1), &mut sink);
            }
            chans.push(c);
        }
        assert_eq!(counts(&r).0, MAX_SHARED_SESSIONS);
        assert_eq!(
            sink.counters.get("MAX_SHARED_SESSIONS"),
            MAX_SESSIONS_JOINED as u64
        );
        // A refused session publishes nothing (it could never be dropped).
        let f = flow((MAX_SHARED_SESSIONS / MAX_SESSIONS_JOINED) as u16);
        let last = chans.last_mut().unwrap();
        last.publish_handle(
            &cx(&f),
            (f.conn.orig_p as u64) << 16 | 1,
            5,
            "x".into(),
            1,
            &mut sink,
        );
        assert_eq!(counts(&r).1, 0);
        chans.clear();
        assert_eq!(counts(&r), (0, 0));
    }
}
