//! Issue 2 acceptance 3: our records against the logs Zeek's own test suite expects on the Zeek
//! traces (captures/public/zeek/*.zeek-expected.*, from zeek/zeek testing/btest/Baseline).
//!
//! Compared, per capture, per connection, in order:
//! - smb_mapping: path and share_type (and service where Zeek sets one: SMB1 only);
//! - smb_files: action, path, name and size of FILE_OPEN / FILE_RENAME / FILE_DELETE (what Zeek logs
//!   by default), with the MAC times of aligned rows within 2 µs; where the Zeek test also logged
//!   FILE_READ / FILE_WRITE, the files written and read (as sets);
//! - files: for SMB files Zeek saw the client send, the name and byte count of our FILE_WRITE;
//! - dce_rpc: named_pipe, endpoint and operation of every call, with rtt within 2 µs.
//!
//! Our records are first brought into Zeek's view by the normalisations in `normalise_*` (each one a
//! documented way in which Zeek logs less, or the same thing differently: README.md, "Differences from Zeek"). Any
//! row left on only one side must be listed in `DELIBERATE` with its reason; a listed difference that
//! no longer occurs fails the test too, so the list stays true.

use crate::common::read_events::{conn_key, events_of, of_log, repo, s};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::{Path, PathBuf};

// ---- Zeek's ASCII (TSV) log format --------------------------------------------------------------

/// One Zeek ASCII log: the `#fields` names and the rows, `None` for the unset field (`-`).
struct ZeekLog {
    fields: Vec<String>,
    rows: Vec<Vec<Option<String>>>,
}

/// Zeek escapes the separator and non-printable bytes as `\xHH` and a backslash as `\\`.
fn unescape(v: &str) -> String {
    let b = v.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' {
            if b.get(i + 1) == Some(&b'\\') {
                out.push(b'\\');
                i += 2;
                continue;
            }
            if b.get(i + 1) == Some(&b'x') {
                if let Some(byte) = v
                    .get(i + 2..i + 4)
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                {
                    out.push(byte);
                    i += 4;
                    continue;
                }
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl ZeekLog {
    fn parse(text: &str) -> Result<ZeekLog, String> {
        let (mut sep, mut empty, mut unset) =
            ("\t".to_string(), "(empty)".to_string(), "-".to_string());
        let mut fields: Option<Vec<String>> = None;
        let mut rows = Vec::new();
        for (n, line) in text.lines().enumerate() {
            // `#separator` is the one header written with a space, since it defines the separator.
            if let Some(v) = line.strip_prefix("#separator ") {
                sep = unescape(v.trim());
                continue;
            }
            if let Some(rest) = line.strip_prefix('#') {
                let mut parts = rest.split(sep.as_str());
                let key = parts.next().unwrap_or_default();
                let vals: Vec<&str> = parts.collect();
                match key {
                    "empty_field" => {
                        empty = vals
                            .first()
                            .map(|v| unescape(v))
                            .ok_or("#empty_field without value")?
                    }
                    "unset_field" => {
                        unset = vals
                            .first()
                            .map(|v| unescape(v))
                            .ok_or("#unset_field without value")?
                    }
                    "fields" => fields = Some(vals.iter().map(|v| v.to_string()).collect()),
                    _ => {}
                }
                continue;
            }
            if line.is_empty() {
                continue;
            }
            let f = fields
                .as_ref()
                .ok_or_else(|| format!("line {}: data before #fields", n + 1))?;
            let cols: Vec<&str> = line.split(sep.as_str()).collect();
            if cols.len() != f.len() {
                return Err(format!(
                    "line {}: {} columns, #fields has {}",
                    n + 1,
                    cols.len(),
                    f.len()
                ));
            }
            rows.push(
                cols.iter()
                    .map(|c| match *c {
                        c if c == unset => None,
                        c if c == empty => Some(String::new()),
                        c => Some(unescape(c)),
                    })
                    .collect(),
            );
        }
        Ok(ZeekLog {
            fields: fields.ok_or("no #fields line")?,
            rows,
        })
    }

    fn get<'a>(&self, row: &'a [Option<String>], name: &str) -> Option<&'a str> {
        let i = self.fields.iter().position(|f| f == name)?;
        row.get(i)?.as_deref()
    }

    fn conn(&self, row: &[Option<String>]) -> String {
        let g = |f| self.get(row, f).unwrap_or("-");
        format!(
            "{}:{}>{}:{}",
            g("id.orig_h"),
            g("id.orig_p"),
            g("id.resp_h"),
            g("id.resp_p")
        )
    }
}

// ---- What each trace's Zeek test ran ------------------------------------------------------------

struct Trace {
    file: &'static str,
    /// The Zeek test added FILE_READ / FILE_WRITE to SMB::logged_file_actions.
    logs_read_write: bool,
    /// The Zeek test ran `zeek -b` with only the DCE-RPC scripts: no SMB analyzer, so no calls over
    /// named pipes are in its dce_rpc.log.
    dce_rpc_tcp_only: bool,
}

/// Every Zeek trace with expected logs beside it (testing/btest/scripts/base/protocols/{smb,dce-rpc}).
const TRACES: &[Trace] = &[
    Trace {
        file: "smb2.pcap",
        logs_read_write: false,
        dce_rpc_tcp_only: false,
    },
    Trace {
        file: "smb3.pcap",
        logs_read_write: false,
        dce_rpc_tcp_only: false,
    },
    Trace {
        file: "smb1.pcap",
        logs_read_write: false,
        dce_rpc_tcp_only: false,
    },
    Trace {
        file: "smb2readwrite.pcap",
        logs_read_write: true,
        dce_rpc_tcp_only: false,
    },
    Trace {
        file: "smb2.delete-on-close-perms-delete-existing.pcap",
        logs_read_write: true,
        dce_rpc_tcp_only: false,
    },
    Trace {
        file: "smb3_multichannel.pcap",
        logs_read_write: false,
        dce_rpc_tcp_only: false,
    },
    Trace {
        file: "cs_window7-join_stream092.pcap",
        logs_read_write: false,
        dce_rpc_tcp_only: false,
    },
    Trace {
        file: "mapi.pcap",
        logs_read_write: false,
        dce_rpc_tcp_only: true,
    },
    Trace {
        file: "dssetup_DsRoleGetPrimaryDomainInformation_standalone_workstation.cap",
        logs_read_write: false,
        dce_rpc_tcp_only: false,
    },
];

// ---- Deliberate differences ---------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Side {
    /// Zeek logs it, we do not.
    ZeekOnly,
    /// We log it, Zeek does not.
    OursOnly,
}

/// A row left on one side after normalisation, expected, with the reason. `row` is the compared
/// text as the failure message prints it.
struct Known {
    capture: &'static str,
    log: &'static str,
    side: Side,
    row: &'static str,
    reason: &'static str,
}

const DELIBERATE: &[Known] = &[
    Known {
        capture: "smb2readwrite.pcap",
        log: "smb_files(read/write)",
        side: Side::ZeekOnly,
        row: "169.254.128.18:49155>169.254.128.15:445 FILE_READ - pythonfile",
        reason: "we emit no FILE_READ records (reads are counted per handle, not logged): detection needs what was written",
    },
    Known {
        capture: "smb3_multichannel.pcap",
        log: "smb_files",
        side: Side::OursOnly,
        row: "172.17.0.184:57092>172.17.0.189:445 FILE_OPEN \\\\172.17.0.189\\share2 11regedit.enc size=0",
        reason: "the CREATE and its successful response are on the wire (frames 675/676); Zeek loses them after frame 670 \
                 acknowledges data captured only in frame 671, which its reassembler takes for a content gap",
    },
    Known {
        capture: "smb3_multichannel.pcap",
        log: "smb_files",
        side: Side::OursOnly,
        row: "172.17.0.184:57092>172.17.0.189:445 FILE_DELETE \\\\172.17.0.189\\share2 13system.pdf",
        reason: "multichannel: the handle was opened on the channel from port 57095; we share a session's handles across \
                 its channels, Zeek knows handles per connection and cannot name the file",
    },
    Known {
        capture: "smb3_multichannel.pcap",
        log: "smb_files",
        side: Side::OursOnly,
        row: "172.17.0.184:57093>172.17.0.189:445 FILE_DELETE - 12splwow64.exe",
        reason: "multichannel: handle opened on the channel from port 57092 (see 13system.pdf)",
    },
    Known {
        capture: "smb3_multichannel.pcap",
        log: "smb_files",
        side: Side::OursOnly,
        row: "172.17.0.184:57093>172.17.0.189:445 FILE_DELETE - 14twain_32.pdf",
        reason: "multichannel: handle opened on the channel from port 57092 (see 13system.pdf)",
    },
    Known {
        capture: "mapi.pcap",
        log: "dce_rpc",
        side: Side::ZeekOnly,
        row: "192.168.0.173:1073>192.168.0.2:1032 1032 exchange_mapi EcRRegisterPushNotification",
        reason: "Zeek's finalize hook logs the last, unanswered call (EcDoRpc) with the previous call's operation and rtt",
    },
    Known {
        capture: "mapi.pcap",
        log: "dce_rpc",
        side: Side::OursOnly,
        row: "192.168.0.173:1073>192.168.0.2:1032 1032 exchange_mapi EcDoRpc",
        reason: "the same unanswered call, logged by us under its own operation with no rtt",
    },
];

// ---- Normalisation: our records seen the way Zeek logs them --------------------------------------

const OK: &str = "STATUS_SUCCESS";

/// One compared row: the text that must be equal, plus values checked with a tolerance once aligned.
#[derive(Clone, Debug)]
struct Row {
    text: String,
    /// (name, seconds): MAC times, rtt.
    approx: Vec<(&'static str, f64)>,
}

type Groups = BTreeMap<String, Vec<Row>>;

fn f64_of(v: &Value) -> Option<f64> {
    v.as_f64()
}

/// Zeek's smb_mapping: written when a TREE_CONNECT succeeds (an error response is parsed as
/// SMB2_error_response and raises no event). SMB2 has no service string: Zeek leaves it unset and
/// we derive one from the share type, so the service is compared only where Zeek has one.
fn ours_mapping(ev: &[Value], zeek_has_service: bool) -> Groups {
    let mut g = Groups::new();
    for e in of_log(ev, "smb_mapping")
        .into_iter()
        .filter(|e| e["status"] == OK)
    {
        let mut text = format!("{} {}", s(&e["path"]), s(&e["share_type"]));
        if zeek_has_service {
            text += &format!(" service={}", s(&e["service"]));
        }
        g.entry(conn_key(e)).or_default().push(Row {
            text,
            approx: vec![],
        });
    }
    g
}

fn zeek_mapping(z: &ZeekLog) -> (Groups, bool) {
    let mut g = Groups::new();
    let mut any_service = false;
    for r in &z.rows {
        let mut text = format!(
            "{} {}",
            z.get(r, "path").unwrap_or("-"),
            z.get(r, "share_type").unwrap_or("-")
        );
        if let Some(sv) = z.get(r, "service") {
            any_service = true;
            text += &format!(" service={sv}");
        }
        g.entry(z.conn(r)).or_default().push(Row {
            text,
            approx: vec![],
        });
    }
    (g, any_service)
}

const ZEEK_DEFAULT_ACTIONS: &[&str] = &["SMB::FILE_OPEN", "SMB::FILE_RENAME", "SMB::FILE_DELETE"];
const TIMES: [&str; 4] = [
    "times.modified",
    "times.accessed",
    "times.created",
    "times.changed",
];

/// The compared text of a file row: action, path (`-` when the tree is unknown), name (Zeek's
/// `<share_root>` for the empty name) and, for a rename, the previous name.
/// The size is compared on opens only: our FILE_DELETE / FILE_RENAME records carry no size, where
/// Zeek repeats the one from the open.
fn file_text(
    action: &str,
    path: Option<&str>,
    name: &str,
    size: Option<u64>,
    prev: Option<&str>,
) -> String {
    let name = if name.is_empty() {
        "<share_root>"
    } else {
        name
    };
    let mut t = format!(
        "{} {} {}",
        action.trim_start_matches("SMB::"),
        path.unwrap_or("-"),
        name
    );
    if action == "SMB::FILE_OPEN" {
        t += &format!(" size={}", size.unwrap_or(0));
    }
    if let Some(p) = prev {
        t += &format!(" prev={p}");
    }
    t
}

/// The trees each connection connected itself: (connection, path).
fn connected_trees(ev: &[Value]) -> HashSet<(String, String)> {
    of_log(ev, "smb_mapping")
        .into_iter()
        .map(|e| (conn_key(e), s(&e["path"])))
        .collect()
}

/// A file record's path as Zeek would know it: Zeek learns trees per connection, so a tree missed
/// (`<unknown>`) or connected on another channel of the session (multichannel: we share trees and
/// handles across a session's connections) is unset (`-`) in its logs.
fn zeek_path(e: &Value, trees: &HashSet<(String, String)>) -> Option<String> {
    let p = s(&e["path"]);
    trees.contains(&(conn_key(e), p.clone())).then_some(p)
}

/// Our smb_files seen as Zeek's default smb_files.log: successful FILE_OPEN / RENAME / DELETE, in
/// time order, with Zeek's per-connection de-duplication of repeated identical records (Zeek's
/// SMB::write_file_log skips a record whose action, fuid, name, path, size and times other than
/// `accessed` it already wrote on that connection).
fn ours_files(ev: &[Value]) -> Groups {
    let mut rows: Vec<&Value> = of_log(ev, "smb_files")
        .into_iter()
        .filter(|e| {
            e["status"] == OK
                && ZEEK_DEFAULT_ACTIONS.contains(&e["action"].as_str().unwrap_or_default())
        })
        .collect();
    // Ours are written when known (a midstream open waits for its first bytes); Zeek's in time order.
    rows.sort_by(|a, b| {
        f64_of(&a["ts"])
            .unwrap_or(0.0)
            .total_cmp(&f64_of(&b["ts"]).unwrap_or(0.0))
    });
    let mut seen = HashSet::new();
    let mut g = Groups::new();
    let trees = connected_trees(ev);
    for e in rows {
        let path = zeek_path(e, &trees);
        let text = file_text(
            &s(&e["action"]),
            path.as_deref(),
            &s(&e["name"]),
            e["size"].as_u64(),
            e["prev_name"].as_str(),
        );
        if e.get("times.modified").is_some() {
            let times: Vec<String> = ["times.modified", "times.created", "times.changed"]
                .iter()
                .map(|t| e[*t].to_string())
                .collect();
            if !seen.insert((conn_key(e), text.clone(), times)) {
                continue;
            }
        }
        let approx = TIMES
            .iter()
            .filter_map(|t| Some((*t, f64_of(&e[*t])?)))
            .collect();
        g.entry(conn_key(e)).or_default().push(Row { text, approx });
    }
    g
}

fn zeek_files(z: &ZeekLog) -> Groups {
    let mut g = Groups::new();
    for r in &z.rows {
        let action = z.get(r, "action").unwrap_or("-");
        if !ZEEK_DEFAULT_ACTIONS.contains(&action) {
            continue;
        }
        let size = z.get(r, "size").and_then(|v| v.parse().ok());
        let text = file_text(
            action,
            z.get(r, "path"),
            z.get(r, "name").unwrap_or(""),
            size,
            z.get(r, "prev_name"),
        );
        // Like the size, the times are the open's: compared there (our deletes and renames carry none).
        let approx = match action {
            "SMB::FILE_OPEN" => TIMES
                .iter()
                .filter_map(|t| Some((*t, z.get(r, t)?.parse().ok()?)))
                .collect(),
            _ => vec![],
        };
        g.entry(z.conn(r)).or_default().push(Row { text, approx });
    }
    g
}

/// Where the Zeek test logged reads and writes too: which files were read and written, as a set per
/// connection (Zeek writes one record per request, less its de-duplication; we one per handle).
fn ours_read_write(ev: &[Value]) -> Groups {
    let trees = connected_trees(ev);
    let mut set: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for e in of_log(ev, "smb_files") {
        let action = s(&e["action"]);
        if (action == "SMB::FILE_WRITE" || action == "SMB::FILE_READ") && e["status"] == OK {
            let path = zeek_path(e, &trees);
            let t = format!(
                "{} {} {}",
                action.trim_start_matches("SMB::"),
                path.as_deref().unwrap_or("-"),
                s(&e["name"])
            );
            set.entry(conn_key(e)).or_default().insert(t);
        }
    }
    set.into_iter()
        .map(|(k, v)| {
            (
                k,
                v.into_iter()
                    .map(|text| Row {
                        text,
                        approx: vec![],
                    })
                    .collect(),
            )
        })
        .collect()
}

fn zeek_read_write(z: &ZeekLog) -> Groups {
    let mut set: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for r in &z.rows {
        let action = z.get(r, "action").unwrap_or("-");
        if action == "SMB::FILE_WRITE" || action == "SMB::FILE_READ" {
            let t = format!(
                "{} {} {}",
                action.trim_start_matches("SMB::"),
                z.get(r, "path").unwrap_or("-"),
                z.get(r, "name").unwrap_or("")
            );
            set.entry(z.conn(r)).or_default().insert(t);
        }
    }
    set.into_iter()
        .map(|(k, v)| {
            (
                k,
                v.into_iter()
                    .map(|text| Row {
                        text,
                        approx: vec![],
                    })
                    .collect(),
            )
        })
        .collect()
}

/// files.log: an SMB file the client sent (is_orig) is one we saw written, with every byte.
fn ours_files_log(ev: &[Value]) -> Groups {
    let mut bytes: BTreeMap<(String, String), u64> = BTreeMap::new();
    for e in of_log(ev, "smb_files")
        .into_iter()
        .filter(|e| e["action"] == "SMB::FILE_WRITE")
    {
        let name = s(&e["name"]);
        let base = name.rsplit('\\').next().unwrap_or_default().to_string();
        *bytes.entry((conn_key(e), base)).or_default() += e["bytes_written"].as_u64().unwrap_or(0);
    }
    let mut g = Groups::new();
    for ((conn, name), n) in bytes {
        g.entry(conn).or_default().push(Row {
            text: format!("sent {name} {n} bytes"),
            approx: vec![],
        });
    }
    g
}

fn zeek_files_log(z: &ZeekLog) -> Groups {
    let mut g = Groups::new();
    for r in &z.rows {
        if z.get(r, "source") != Some("SMB") {
            continue;
        }
        let name = z.get(r, "filename").unwrap_or("-");
        let text = match z.get(r, "is_orig") {
            Some("T") => format!(
                "sent {name} {} bytes",
                z.get(r, "seen_bytes").unwrap_or("-")
            ),
            _ => format!(
                "received {name} {} bytes",
                z.get(r, "seen_bytes").unwrap_or("-")
            ),
        };
        let conn = format!(
            "{}:{}>{}:{}",
            z.get(r, "id.orig_h").unwrap_or("-"),
            z.get(r, "id.orig_p").unwrap_or("-"),
            z.get(r, "id.resp_h").unwrap_or("-"),
            z.get(r, "id.resp_p").unwrap_or("-")
        );
        g.entry(conn).or_default().push(Row {
            text,
            approx: vec![],
        });
    }
    g
}

/// Zeek's DCE_RPC::ignored_operations (base/protocols/dce-rpc/main.zeek): calls it never logs.
const ZEEK_IGNORED_OPERATIONS: &[(&str, &str)] = &[
    ("winreg", "BaseRegCloseKey"),
    ("winreg", "BaseRegGetVersion"),
    ("winreg", "BaseRegOpenKey"),
    ("winreg", "BaseRegQueryValue"),
    ("winreg", "BaseRegDeleteKeyEx"),
    ("winreg", "OpenLocalMachine"),
    ("winreg", "BaseRegEnumKey"),
    ("winreg", "OpenClassesRoot"),
    ("spoolss", "RpcSplOpenPrinter"),
    ("spoolss", "RpcClosePrinter"),
    ("wkssvc", "NetrWkstaGetInfo"),
];

/// Our dce_rpc calls seen as Zeek's dce_rpc.log: no bind / alter_context records (Zeek logs calls
/// only), no calls whose interface is unknown because the bind was never seen (Zeek needs the bind:
/// without an endpoint it does not log), none of Zeek's ignored operations; in the order Zeek
/// writes them: at the response, unanswered calls last.
fn ours_dce_rpc(ev: &[Value], tcp_only: bool) -> Groups {
    let mut calls: Vec<&Value> = of_log(ev, "dce_rpc")
        .into_iter()
        .filter(|e| {
            !matches!(
                e["operation"].as_str(),
                Some("bind") | Some("alter_context")
            )
        })
        .filter(|e| e["endpoint"] != "unknown")
        .filter(|e| {
            !ZEEK_IGNORED_OPERATIONS.contains(&(
                e["endpoint"].as_str().unwrap_or_default(),
                e["operation"].as_str().unwrap_or_default(),
            ))
        })
        .filter(|e| !tcp_only || e["transport"] == "tcp")
        .collect();
    let answered_at = |e: &Value| match (f64_of(&e["ts"]), f64_of(&e["rtt"])) {
        (Some(t), Some(r)) => t + r,
        _ => f64::INFINITY,
    };
    calls.sort_by(|a, b| answered_at(a).total_cmp(&answered_at(b)));
    let mut g = Groups::new();
    for e in calls {
        let pipe = e["named_pipe"].as_str().unwrap_or("-");
        let text = format!("{pipe} {} {}", s(&e["endpoint"]), s(&e["operation"]));
        let approx = f64_of(&e["rtt"])
            .map(|r| vec![("rtt", r)])
            .unwrap_or_default();
        g.entry(conn_key(e)).or_default().push(Row { text, approx });
    }
    g
}

fn zeek_dce_rpc(z: &ZeekLog) -> Groups {
    let mut g = Groups::new();
    for r in &z.rows {
        let text = format!(
            "{} {} {}",
            z.get(r, "named_pipe").unwrap_or("-"),
            z.get(r, "endpoint").unwrap_or("-"),
            z.get(r, "operation").unwrap_or("-")
        );
        let approx = z
            .get(r, "rtt")
            .and_then(|v| v.parse().ok())
            .map(|r| vec![("rtt", r)])
            .unwrap_or_default();
        g.entry(z.conn(r)).or_default().push(Row { text, approx });
    }
    g
}

// ---- Comparison ---------------------------------------------------------------------------------

/// A difference: a row on one side only, or an aligned row whose times / rtt differ.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Diff {
    log: String,
    side: Option<Side>,
    row: String,
}

/// Longest common subsequence alignment of two row lists; returns the aligned index pairs.
fn align(a: &[Row], b: &[Row]) -> Vec<(usize, usize)> {
    let (n, m) = (a.len(), b.len());
    let mut l = vec![vec![0usize; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            l[i][j] = if a[i].text == b[j].text {
                l[i + 1][j + 1] + 1
            } else {
                l[i + 1][j].max(l[i][j + 1])
            };
        }
    }
    let (mut i, mut j, mut out) = (0, 0, Vec::new());
    while i < n && j < m {
        if a[i].text == b[j].text {
            out.push((i, j));
            i += 1;
            j += 1;
        } else if l[i + 1][j] >= l[i][j + 1] {
            i += 1;
        } else {
            j += 1;
        }
    }
    out
}

/// Zeek turns a FILETIME into seconds by dividing the 1601-based count of 100 ns ticks in a double
/// (about 13e9 s, whose ulp is 1.9 µs) and rounds to the microsecond when printing; we convert
/// exactly and truncate. 4 µs covers both.
const TIME_TOLERANCE_S: f64 = 4e-6;

fn compare(log: &str, zeek: &Groups, ours: &Groups) -> Vec<Diff> {
    let mut diffs = Vec::new();
    let conns: BTreeSet<&String> = zeek.keys().chain(ours.keys()).collect();
    let empty = Vec::new();
    for c in conns {
        let (z, o) = (zeek.get(c).unwrap_or(&empty), ours.get(c).unwrap_or(&empty));
        let pairs = align(z, o);
        let (zi, oi): (HashSet<usize>, HashSet<usize>) = (
            pairs.iter().map(|p| p.0).collect(),
            pairs.iter().map(|p| p.1).collect(),
        );
        for (_, r) in z.iter().enumerate().filter(|(i, _)| !zi.contains(i)) {
            diffs.push(Diff {
                log: log.into(),
                side: Some(Side::ZeekOnly),
                row: format!("{c} {}", r.text),
            });
        }
        for (_, r) in o.iter().enumerate().filter(|(i, _)| !oi.contains(i)) {
            diffs.push(Diff {
                log: log.into(),
                side: Some(Side::OursOnly),
                row: format!("{c} {}", r.text),
            });
        }
        for (i, j) in pairs {
            for (name, zv) in &z[i].approx {
                let ov = o[j].approx.iter().find(|(n, _)| n == name).map(|(_, v)| *v);
                if ov.is_none_or(|ov| (ov - zv).abs() > TIME_TOLERANCE_S) {
                    diffs.push(Diff {
                        log: log.into(),
                        side: None,
                        row: format!("{c} {}: {name} zeek {zv:.6} ours {ov:?}", z[i].text),
                    });
                }
            }
        }
    }
    diffs
}

fn zeek_dir() -> PathBuf {
    repo().join("captures/public/zeek")
}

fn expected(capture: &Path, log: &str) -> Option<ZeekLog> {
    let p = PathBuf::from(format!("{}.zeek-expected.{log}.log", capture.display()));
    let text = std::fs::read_to_string(&p).ok()?;
    Some(ZeekLog::parse(&text).unwrap_or_else(|e| panic!("{}: {e}", p.display())))
}

/// Every difference of one trace, after normalisation.
fn trace_diffs(t: &Trace) -> Vec<Diff> {
    let cap = zeek_dir().join(t.file);
    let ev = events_of(&cap, None);
    let mut diffs = Vec::new();
    if let Some(z) = expected(&cap, "smb_mapping") {
        let (zg, service) = zeek_mapping(&z);
        diffs.extend(compare("smb_mapping", &zg, &ours_mapping(&ev, service)));
    }
    if let Some(z) = expected(&cap, "smb_files") {
        diffs.extend(compare("smb_files", &zeek_files(&z), &ours_files(&ev)));
        if t.logs_read_write {
            diffs.extend(compare(
                "smb_files(read/write)",
                &zeek_read_write(&z),
                &ours_read_write(&ev),
            ));
        }
    }
    if let Some(z) = expected(&cap, "files") {
        diffs.extend(compare("files", &zeek_files_log(&z), &ours_files_log(&ev)));
    }
    if let Some(z) = expected(&cap, "dce_rpc") {
        diffs.extend(compare(
            "dce_rpc",
            &zeek_dce_rpc(&z),
            &ours_dce_rpc(&ev, t.dce_rpc_tcp_only),
        ));
    }
    diffs
}

#[test]
fn every_zeek_trace_with_expected_logs_is_listed() {
    let mut listed: Vec<&str> = TRACES.iter().map(|t| t.file).collect();
    listed.sort();
    let mut found: Vec<String> = std::fs::read_dir(zeek_dir())
        .unwrap()
        .filter_map(|e| {
            let n = e.ok()?.file_name().to_string_lossy().into_owned();
            let (cap, rest) = n.split_once(".zeek-expected.")?;
            // smb_cmd.log is a debugging log (policy/protocols/smb/log-cmds): not part of the schema
            (rest != "smb_cmd.log").then(|| cap.to_string())
        })
        .collect();
    found.sort();
    found.dedup();
    assert_eq!(
        listed, found,
        "TRACES must name every Zeek trace with an expected log"
    );
}

#[test]
fn our_records_match_zeek_expected_logs() {
    let mut unexpected = Vec::new();
    let mut seen_known = vec![false; DELIBERATE.len()];
    let mut compared = 0;
    for t in TRACES {
        let diffs = trace_diffs(t);
        compared += 1;
        for d in diffs {
            match DELIBERATE.iter().position(|k| {
                k.capture == t.file && k.log == d.log && Some(k.side) == d.side && k.row == d.row
            }) {
                Some(i) => seen_known[i] = true,
                None => unexpected.push(format!("{} [{}] {:?}: {}", t.file, d.log, d.side, d.row)),
            }
        }
    }
    let stale: Vec<String> = DELIBERATE
        .iter()
        .zip(&seen_known)
        .filter(|(_, s)| !**s)
        .map(|(k, _)| {
            format!(
                "{} [{}] {:?}: {} ({})",
                k.capture, k.log, k.side, k.row, k.reason
            )
        })
        .collect();
    assert!(compared >= 9, "only {compared} traces compared");
    assert!(
        unexpected.is_empty(),
        "{} differences from Zeek not listed in DELIBERATE:\n{}",
        unexpected.len(),
        unexpected.join("\n")
    );
    assert!(
        stale.is_empty(),
        "listed in DELIBERATE but no longer different (remove them):\n{}",
        stale.join("\n")
    );
}

// ---- The log parser itself ----------------------------------------------------------------------

#[test]
fn zeek_log_parser_reads_headers_unset_empty_and_escapes() {
    let text =
        "#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n#unset_field\t-\n#path\tx\n\
                #fields\tpath\tname\tsize\n#types\tstring\tstring\tcount\n\
                \\\\\\\\h\\\\IPC$\t-\t(empty)\n\
                a\\x09b\tc\\\\d\t3\n#close\tX\n";
    let z = ZeekLog::parse(text).unwrap();
    assert_eq!(z.fields, ["path", "name", "size"]);
    assert_eq!(z.rows.len(), 2);
    assert_eq!(z.get(&z.rows[0], "path"), Some("\\\\h\\IPC$"));
    assert_eq!(z.get(&z.rows[0], "name"), None);
    assert_eq!(z.get(&z.rows[0], "size"), Some(""));
    assert_eq!(z.get(&z.rows[1], "path"), Some("a\tb"));
    assert_eq!(z.get(&z.rows[1], "name"), Some("c\\d"));
    assert!(
        ZeekLog::parse("#fields\ta\tb\n1\n").is_err(),
        "a short row is an error"
    );
    assert!(
        ZeekLog::parse("1\t2\n").is_err(),
        "data before #fields is an error"
    );
}

#[test]
fn alignment_reports_rows_on_one_side() {
    let r = |t: &str| Row {
        text: t.into(),
        approx: vec![],
    };
    let z: Groups = [("c".to_string(), vec![r("a"), r("b"), r("c")])].into();
    let o: Groups = [("c".to_string(), vec![r("a"), r("c"), r("d")])].into();
    let d = compare("x", &z, &o);
    assert_eq!(
        d,
        vec![
            Diff {
                log: "x".into(),
                side: Some(Side::ZeekOnly),
                row: "c b".into()
            },
            Diff {
                log: "x".into(),
                side: Some(Side::OursOnly),
                row: "c d".into()
            },
        ]
    );
}
