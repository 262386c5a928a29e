//! The human summary written to stderr at the end of a run. Built from events and counters only,
//! so it fills in as the protocol layers do.

use crate::event::{Event, FileAction};
use crate::sink::Counters;
use rustc_hash::FxHashSet;
use std::collections::{BTreeMap, VecDeque};
use std::fmt::Write;

/// Entries listed per section before "… and N more".
const MAX_LISTED: usize = 20;
/// Distinct entries remembered per section (users, shares, files, operations, sessions); beyond it
/// new ones are only counted, so hostile input cannot grow the summary without bound.
pub const MAX_SUMMARY_ENTRIES: usize = 10_000;
/// SMB sessions (connection uid, SessionId) remembered to count each once. Sessions are counted,
/// not listed, so only the most recent ones are kept: a repeat SESSION_SETUP on a session among
/// the last this many is not counted again; one older than that would be, so the summary then
/// says how many sessions were forgotten. Memory stays fixed however long the run.
pub const MAX_SUMMARY_RECENT_SESSIONS: usize = 4096;

/// Distinct SMB sessions, counted with a fixed-size memory of the most recent ones.
#[derive(Debug, Default)]
struct SessionCount {
    /// Hashes of the recent sessions, oldest first, and the same as a set.
    order: VecDeque<u64>,
    recent: FxHashSet<u64>,
    distinct: u64,
    /// Sessions forgotten to make room (a repeat of one of them would be counted twice).
    forgotten: u64,
}

impl SessionCount {
    fn observe(&mut self, uid: &crate::flow::Uid, session_id: Option<u64>) {
        use std::hash::{Hash, Hasher};
        let mut h = rustc_hash::FxHasher::default();
        uid.hash(&mut h);
        session_id.hash(&mut h);
        let key = h.finish();
        if self.recent.contains(&key) {
            return;
        }
        if self.order.len() >= MAX_SUMMARY_RECENT_SESSIONS {
            if let Some(old) = self.order.pop_front() {
                self.recent.remove(&old);
                self.forgotten += 1;
            }
        }
        self.order.push_back(key);
        self.recent.insert(key);
        self.distinct += 1;
    }
}

/// Bump `key` in `map` if it is there or there is room; otherwise count it as dropped.
fn bump<K: Ord, V>(
    map: &mut BTreeMap<K, V>,
    key: K,
    dropped: &mut u64,
    f: impl FnOnce(&mut V),
    init: V,
) {
    if let Some(v) = map.get_mut(&key) {
        f(v);
    } else if map.len() < MAX_SUMMARY_ENTRIES {
        let mut v = init;
        f(&mut v);
        map.insert(key, v);
    } else {
        *dropped += 1;
    }
}

#[derive(Debug, Default)]
pub struct Summary {
    sessions: SessionCount,
    users: BTreeMap<String, u64>,
    shares: BTreeMap<String, u64>,
    /// (share, name) → bytes written, executable?
    admin_writes: BTreeMap<(String, String), (u64, bool)>,
    dce_ops: BTreeMap<(String, String), u64>,
    /// Entries not remembered because a section was full.
    dropped: u64,
}

/// `X$` shares other than IPC$ (ADMIN$, C$, D$ …).
pub fn is_admin_share(share: &str) -> bool {
    share.len() >= 2 && share.ends_with('$') && !share.eq_ignore_ascii_case("IPC$")
}

impl Summary {
    pub fn new() -> Summary {
        Summary::default()
    }

    pub fn observe(&mut self, ev: &Event) {
        match ev {
            Event::SmbAuth(a) => {
                self.sessions.observe(&a.conn.uid, a.session_id);
                let who = match (&a.domain, &a.user) {
                    (Some(d), Some(u)) if !d.is_empty() => format!("{d}\\{u}"),
                    (_, Some(u)) => u.clone(),
                    _ => format!("<{}>", a.auth),
                };
                bump(&mut self.users, who, &mut self.dropped, |n| *n += 1, 0);
            }
            Event::SmbMapping(m) => {
                bump(
                    &mut self.shares,
                    m.share.to_ascii_uppercase(),
                    &mut self.dropped,
                    |n| *n += 1,
                    0,
                );
            }
            Event::SmbFiles(f)
                if f.action == Some(FileAction::FileWrite) && is_admin_share(&f.share) =>
            {
                let key = (f.share.to_ascii_uppercase(), f.name.clone());
                let (bytes, pe) = (f.bytes_written.unwrap_or(0), f.pe.unwrap_or(false));
                bump(
                    &mut self.admin_writes,
                    key,
                    &mut self.dropped,
                    |e| {
                        e.0 = e.0.saturating_add(bytes);
                        e.1 |= pe;
                    },
                    (0, false),
                );
            }
            Event::DceRpc(d) => {
                let key = (d.endpoint.clone(), d.operation.clone());
                bump(&mut self.dce_ops, key, &mut self.dropped, |n| *n += 1, 0);
            }
            _ => {}
        }
    }

    pub fn render(&self, c: &Counters, files_failed: usize) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "psexec-sensor summary");
        let _ = writeln!(
            s,
            "  input      {} files ({} failed), {} packets, {}",
            c.get("files").max(files_failed as u64),
            files_failed,
            c.get("packets"),
            human_bytes(c.get("bytes"))
        );
        let _ = writeln!(
            s,
            "  flows      {} TCP ({} parsed, {} ignored), {} payload bytes, {} gap bytes",
            c.get("flows"),
            c.get("flows.parsed"),
            c.get("flows.ignored"),
            c.get("tcp.payload_bytes"),
            c.get("tcp.gap_bytes")
        );
        let skipped: u64 = [
            "decode.non_ip",
            "decode.non_tcp",
            "decode.unsupported_linktype",
        ]
        .iter()
        .map(|k| c.get(k))
        .sum();
        let bad: u64 = [
            "decode.truncated_link",
            "decode.malformed_ip",
            "decode.malformed_tcp",
        ]
        .iter()
        .map(|k| c.get(k))
        .sum();
        if skipped + bad + c.get("ip.fragments") > 0 {
            let _ = writeln!(
                s,
                "  decode     {skipped} non-TCP skipped, {bad} malformed, {} IP fragments ({} datagrams reassembled)",
                c.get("ip.fragments"),
                c.get("ip.reassembled")
            );
        }
        let _ = writeln!(s, "  smb        {} sessions", self.sessions.distinct);
        if self.sessions.forgotten > 0 {
            let _ = writeln!(
                s,
                "             ({} older sessions forgotten: MAX_SUMMARY_RECENT_SESSIONS reached; a repeated SESSION_SETUP on one counts again)",
                self.sessions.forgotten
            );
        }
        list(
            &mut s,
            "users",
            self.users.iter().map(|(k, v)| format!("{k} ({v})")),
        );
        list(
            &mut s,
            "tree connects",
            self.shares.iter().map(|(k, v)| format!("{k} ({v})")),
        );
        list(
            &mut s,
            "admin-share writes",
            self.admin_writes.iter().map(|((sh, n), (b, pe))| {
                format!(
                    "{sh}\\{n} {b} bytes{}",
                    if *pe { " [executable]" } else { "" }
                )
            }),
        );
        list(
            &mut s,
            "dce-rpc",
            self.dce_ops
                .iter()
                .map(|((e, o), n)| format!("{e}::{o} ({n})")),
        );
        let counters = c.by_name();
        let anomalies: Vec<String> = counters
            .iter()
            .filter_map(|(k, v)| k.strip_prefix("anomaly.").map(|k| format!("{k} ({v})")))
            .collect();
        list(&mut s, "anomalies", anomalies.into_iter());
        if self.dropped > 0 {
            let _ = writeln!(
                s,
                "  ({} summary entries not listed: MAX_SUMMARY_ENTRIES reached)",
                self.dropped
            );
        }
        let caps: Vec<String> = counters
            .iter()
            .filter(|(k, _)| k.starts_with("MAX_"))
            .map(|(k, v)| format!("{k} ({v})"))
            .collect();
        list(&mut s, "caps reached", caps.into_iter());
        s
    }
}

fn list(s: &mut String, title: &str, items: impl Iterator<Item = String>) {
    let items: Vec<String> = items.collect();
    if items.is_empty() {
        return;
    }
    let _ = writeln!(s, "  {title}:");
    for i in items.iter().take(MAX_LISTED) {
        let _ = writeln!(s, "    {i}");
    }
    if items.len() > MAX_LISTED {
        let _ = writeln!(s, "    … and {} more", items.len() - MAX_LISTED);
    }
}

fn human_bytes(b: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = b as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{b} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{ConnFields, SmbFiles, SmbMapping, SmbVersion};

    fn mapping(share: &str) -> Event {
        Event::SmbMapping(SmbMapping {
            conn: ConnFields::default(),
            path: format!("\\\\srv\\{share}"),
            share: share.into(),
            service: None,
            share_type: "DISK",
            native_file_system: None,
            status: "STATUS_SUCCESS".into(),
            smb_version: SmbVersion::Smb2,
            session_id: None,
            tree_id: None,
        })
    }

    #[test]
    fn shares_writes_and_counters() {
        let mut s = Summary::new();
        s.observe(&mapping("ADMIN$"));
        s.observe(&mapping("admin$"));
        s.observe(&mapping("IPC$"));
        for (share, name, n) in [
            ("ADMIN$", "x.exe", 100u64),
            ("IPC$", "svcctl", 5),
            ("public", "a.txt", 7),
        ] {
            s.observe(&Event::SmbFiles(SmbFiles {
                action: Some(FileAction::FileWrite),
                share: share.into(),
                name: name.into(),
                bytes_written: Some(n),
                pe: Some(true),
                ..SmbFiles::default()
            }));
        }
        let mut c = Counters::default();
        c.add("packets", 10);
        c.add("files", 1);
        c.add("anomaly.gap", 2);
        c.add("MAX_FLOWS", 3);
        let text = s.render(&c, 1);
        assert!(text.contains("1 files (1 failed), 10 packets"), "{text}");
        assert!(text.contains("ADMIN$ (2)"), "{text}");
        assert!(text.contains("IPC$ (1)"), "{text}");
        assert!(
            text.contains("ADMIN$\\x.exe 100 bytes [executable]"),
            "{text}"
        );
        assert!(!text.contains("svcctl"), "{text}");
        assert!(!text.contains("a.txt"), "{text}");
        assert!(text.contains("gap (2)"), "{text}");
        assert!(text.contains("MAX_FLOWS (3)"), "{text}");
    }

    #[test]
    fn sections_are_bounded() {
        let mut s = Summary::new();
        for i in 0..(MAX_SUMMARY_ENTRIES + 5) {
            s.observe(&mapping(&format!("S{i}")));
        }
        assert_eq!(s.shares.len(), MAX_SUMMARY_ENTRIES);
        assert_eq!(s.dropped, 5);
        assert!(s.render(&Counters::default(), 0).contains("… and"));
    }

    fn auth(uid: u64, session: u64) -> Event {
        Event::SmbAuth(crate::event::SmbAuth {
            conn: ConnFields {
                uid: crate::flow::Uid(uid),
                ..ConnFields::default()
            },
            session_id: Some(session),
            user: Some("u".into()),
            domain: None,
            workstation: None,
            auth: "ntlmssp",
            dialect: "SMB 3.1.1".into(),
            status: "STATUS_SUCCESS".into(),
            smb_version: SmbVersion::Smb2,
            user_source: None,
            ticket: None,
        })
    }

    #[test]
    fn sessions_counted_once_in_fixed_memory() {
        let mut s = Summary::new();
        s.observe(&auth(1, 7));
        s.observe(&auth(1, 7));
        s.observe(&auth(1, 8));
        s.observe(&auth(2, 7));
        assert_eq!(s.sessions.distinct, 3);
        let n = 3 * MAX_SUMMARY_RECENT_SESSIONS as u64;
        for i in 0..n {
            s.observe(&auth(100 + i, 1));
            // A repeat right after is still recognised.
            s.observe(&auth(100 + i, 1));
        }
        assert_eq!(s.sessions.distinct, 3 + n);
        assert_eq!(s.sessions.order.len(), MAX_SUMMARY_RECENT_SESSIONS);
        assert_eq!(s.sessions.recent.len(), MAX_SUMMARY_RECENT_SESSIONS);
        assert_eq!(
            s.sessions.forgotten,
            3 + n - MAX_SUMMARY_RECENT_SESSIONS as u64
        );
        let text = s.render(&Counters::default(), 0);
        assert!(text.contains(&format!("{} sessions", 3 + n)), "{text}");
        assert!(text.contains("MAX_SUMMARY_RECENT_SESSIONS"), "{text}");
    }

    #[test]
    fn admin_shares() {
        assert!(is_admin_share("ADMIN$"));
        assert!(is_admin_share("c$"));
        assert!(!is_admin_share("IPC$"));
        assert!(!is_admin_share("ipc$"));
        assert!(!is_admin_share("public"));
        assert!(!is_admin_share("$"));
    }
}
