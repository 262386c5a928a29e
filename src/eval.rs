//! `eval`: score the sensor's alerts for recorded captures against their `.truth.json`.
//!
//! Truth format (captures/README.md): `verdict` positive|negative, `technique`, `tool`,
//! `attacker_ip`, `victim_ip`, `visibility` cleartext|stub-encrypted|smb3-encrypted, `expect`
//! {services [{name?, binary_path? | binary_path_contains?}], uploads [{share, name, bytes, sha256?}],
//! pipes, tree_connects}.
//!
//! Scoring, per capture:
//! * positive, visible (cleartext or stub-encrypted): detected iff a technique alert goes from
//!   attacker_ip to victim_ip and, when `expect.services` is given, at least one expected service
//!   matches that alert (its own service name / binary path or one of its folded `calls`):
//!   name equal case-insensitively, `binary_path` equal case-insensitively,
//!   `binary_path_contains` a case-insensitive substring.
//! * positive, smb3-encrypted: not counted in recall; ok when a `visibility` record names the pair
//!   (or a technique alert does).
//! * negative: ok iff no technique alert at all (signals are fine).
//! * fields (positives detected): technique, each expected service's name and binary path, each
//!   expected upload's name, bytes and sha256; for smb3-encrypted positives the technique only
//!   (nothing else is readable on the wire).
//! * uploads: each upload belongs to one alert (detection reports it once), so the bytes of a
//!   name are summed over the pair's alerts without counting one upload twice.
//! * attribution: where the truth names a tool; `smbexec-unknown` accepts any smbexec-family or
//!   `unknown`, `unknown-malware` accepts `unknown`, an `impacket-*` script accepts
//!   `impacket-based` (the library's traces without a signature of the script).
//!
//! The exit status follows `Report::all_ok`: every visible positive detected and no negative alerting.
//!
//! Use: `let cases = discover(&dirs)?;` then, per case, run the pipeline over `case.capture` and call
//! `score(&case, &alerts)`; `Report::new(scores)` renders `table()` or `to_json()`.

use crate::event::alert::{Alert, TechniqueAlert};
use serde::{Deserialize, Serialize};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

/// Deepest directory nesting `discover` walks.
pub const MAX_EVAL_DEPTH: usize = 16;

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Positive,
    Negative,
}

#[derive(Clone, Debug, Deserialize, Serialize, Default)]
pub struct ExpectService {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub binary_path: Option<String>,
    #[serde(default)]
    pub binary_path_contains: Option<String>,
}

#[derive(Clone, Debug, Deserialize, Serialize, Default)]
pub struct ExpectUpload {
    #[serde(default)]
    pub share: Option<String>,
    pub name: String,
    #[serde(default)]
    pub bytes: Option<u64>,
    #[serde(default)]
    pub sha256: Option<String>,
}

#[derive(Clone, Debug, Deserialize, Serialize, Default)]
pub struct Expect {
    #[serde(default)]
    pub services: Vec<ExpectService>,
    #[serde(default)]
    pub uploads: Vec<ExpectUpload>,
    #[serde(default)]
    pub pipes: Vec<String>,
    #[serde(default)]
    pub tree_connects: Vec<String>,
}

/// One `<capture>.truth.json`.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct Truth {
    #[serde(default)]
    pub capture: Option<String>,
    pub verdict: Verdict,
    #[serde(default)]
    pub technique: Option<String>,
    #[serde(default)]
    pub tool: Option<String>,
    #[serde(default)]
    pub activity: Option<String>,
    #[serde(default)]
    pub attacker_ip: Option<IpAddr>,
    #[serde(default)]
    pub victim_ip: Option<IpAddr>,
    pub visibility: String,
    #[serde(default)]
    pub expect: Expect,
    #[serde(default)]
    pub notes: Option<String>,
    /// The keytab recorded with the capture (a file name beside the truth file): `eval
    /// --truth-keytabs` decrypts with it.
    #[serde(default)]
    pub keytab: Option<String>,
}

impl Truth {
    pub fn load(path: &Path) -> anyhow::Result<Truth> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        Truth::parse(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
    }
    pub fn parse(text: &str) -> Result<Truth, serde_json::Error> {
        serde_json::from_str(text)
    }
    /// A positive the sensor is expected to see (cleartext or stub-encrypted).
    pub fn visible_positive(&self) -> bool {
        self.verdict == Verdict::Positive && self.visibility != "smb3-encrypted"
    }
}

/// A capture with its truth.
#[derive(Clone, Debug)]
pub struct Case {
    pub capture: PathBuf,
    pub truth_path: PathBuf,
    pub truth: Truth,
}

/// Every capture under `dirs` (recursively; a file argument is taken as a capture or truth file)
/// that has a `.truth.json` beside it, sorted by path.
pub fn discover(dirs: &[PathBuf]) -> anyhow::Result<Vec<Case>> {
    let mut truths = vec![];
    for d in dirs {
        if d.is_file() {
            let s = d.display().to_string();
            if s.ends_with(".truth.json") {
                truths.push(d.clone());
            } else {
                truths.push(PathBuf::from(format!("{s}.truth.json")));
            }
        } else {
            walk(d, 0, &mut truths)?;
        }
    }
    truths.sort();
    truths.dedup();
    let mut cases = vec![];
    for t in truths {
        let s = t.display().to_string();
        let capture = PathBuf::from(s.trim_end_matches(".truth.json"));
        if !capture.is_file() {
            continue;
        }
        let truth = Truth::load(&t)?;
        cases.push(Case {
            capture,
            truth_path: t,
            truth,
        });
    }
    Ok(cases)
}

fn walk(dir: &Path, depth: usize, out: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    if depth > MAX_EVAL_DEPTH {
        return Ok(());
    }
    let rd = std::fs::read_dir(dir).map_err(|e| anyhow::anyhow!("{}: {e}", dir.display()))?;
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            walk(&p, depth + 1, out)?;
        } else if p.to_string_lossy().ends_with(".truth.json") {
            out.push(p);
        }
    }
    Ok(())
}

/// One checked field.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct FieldCheck {
    pub field: String,
    pub expected: String,
    pub got: String,
    pub ok: bool,
}

#[derive(Clone, Copy, Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    /// Visible positive detected.
    Detected,
    /// Visible positive not detected.
    Missed,
    /// Negative with no technique alert.
    Quiet,
    /// Negative with a technique alert.
    FalseAlert,
    /// SMB3-encrypted positive with a visibility record (or a technique alert).
    Visibility,
    /// SMB3-encrypted positive with nothing at all.
    Silent,
}

/// The score of one capture.
#[derive(Clone, Debug, Serialize)]
pub struct CaptureScore {
    pub capture: String,
    pub verdict: Verdict,
    pub visibility: String,
    pub expected_technique: Option<String>,
    pub expected_tool: Option<String>,
    pub status: Status,
    /// Technique alerts in the capture (all pairs).
    pub technique_alerts: usize,
    /// Technique alerts from attacker to victim.
    pub pair_alerts: usize,
    pub got_technique: Option<String>,
    pub got_tool: Option<String>,
    pub fields: Vec<FieldCheck>,
    /// None when the truth names no tool or nothing was detected.
    pub attribution_ok: Option<bool>,
    pub signals: usize,
    pub visibility_records: usize,
    pub ok: bool,
}

fn eq_ci(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b)
}

/// Pairs (service name, binary path) an alert carries: its own and each folded call's.
fn services_of(a: &TechniqueAlert) -> Vec<(Option<&str>, Option<&str>)> {
    let mut v = vec![(a.service_name.as_deref(), a.binary_path.as_deref())];
    for c in &a.calls {
        v.push((c.service_name.as_deref(), c.binary_path.as_deref()));
    }
    v
}

fn name_ok(exp: &ExpectService, got: Option<&str>) -> bool {
    exp.name
        .as_deref()
        .is_none_or(|n| got.is_some_and(|g| eq_ci(n, g)))
}

fn path_ok(exp: &ExpectService, got: Option<&str>) -> bool {
    let exact = exp
        .binary_path
        .as_deref()
        .is_none_or(|p| got.is_some_and(|g| eq_ci(p, g)));
    let contains = exp
        .binary_path_contains
        .as_deref()
        .is_none_or(|p| got.is_some_and(|g| g.to_lowercase().contains(&p.to_lowercase())));
    exact && contains
}

fn service_matches(exp: &ExpectService, a: &TechniqueAlert) -> bool {
    services_of(a)
        .into_iter()
        .any(|(n, p)| name_ok(exp, n) && path_ok(exp, p))
}

/// Which tools satisfy a truth tool.
pub fn tool_accepts(truth_tool: &str, got: &str) -> bool {
    match truth_tool {
        "smbexec-unknown" => {
            matches!(
                got,
                "unknown" | "smbexec-unknown" | "impacket-smbexec" | "crackmapexec-smbexec"
            )
        }
        "unknown-malware" | "unknown" => matches!(got, "unknown" | "unknown-malware"),
        // The family is right when no signature specific to the script matched.
        t if t.starts_with("impacket-") => t == got || got == "impacket-based",
        t => t == got,
    }
}

/// Score one capture's alerts against its truth.
pub fn score(case: &Case, alerts: &[Alert]) -> CaptureScore {
    let t = &case.truth;
    let techs: Vec<&TechniqueAlert> = alerts.iter().filter_map(|a| a.as_technique()).collect();
    let pair: Vec<&TechniqueAlert> = techs
        .iter()
        .copied()
        .filter(|a| Some(a.src_ip) == t.attacker_ip && Some(a.dst_ip) == t.victim_ip)
        .collect();
    let signals = alerts
        .iter()
        .filter(|a| matches!(a, Alert::Signal(_)))
        .count();
    let vis = alerts
        .iter()
        .filter(|a| match a {
            Alert::Visibility(v) => {
                Some(v.src_ip) == t.attacker_ip && Some(v.dst_ip) == t.victim_ip
            }
            _ => false,
        })
        .count();
    // The alert that matches the truth best: one matching an expected service, else the first.
    let matching: Vec<&TechniqueAlert> = if t.expect.services.is_empty() {
        pair.clone()
    } else {
        pair.iter()
            .copied()
            .filter(|a| t.expect.services.iter().any(|s| service_matches(s, a)))
            .collect()
    };
    let best = matching.first().copied().or(pair.first().copied());
    let mut fields = vec![];
    let status = match t.verdict {
        Verdict::Negative => {
            if techs.is_empty() {
                Status::Quiet
            } else {
                Status::FalseAlert
            }
        }
        Verdict::Positive if t.visibility == "smb3-encrypted" => {
            if vis > 0 || !pair.is_empty() {
                Status::Visibility
            } else {
                Status::Silent
            }
        }
        Verdict::Positive => {
            if matching.is_empty() {
                Status::Missed
            } else {
                Status::Detected
            }
        }
    };
    if t.verdict == Verdict::Positive && !pair.is_empty() {
        if let Some(exp) = &t.technique {
            let got = best.map(|a| a.technique.as_str()).unwrap_or("-");
            fields.push(FieldCheck {
                field: "technique".into(),
                expected: exp.clone(),
                got: got.into(),
                ok: eq_ci(exp, got),
            });
        }
        // Names, paths and uploads are expected where the traffic shows them: inside SMB3
        // encryption only the technique can be checked.
        let readable = t.visible_positive();
        for (i, s) in t.expect.services.iter().enumerate().filter(|_| readable) {
            if let Some(n) = &s.name {
                let hit = pair
                    .iter()
                    .flat_map(|a| services_of(a))
                    .find_map(|(gn, _)| gn.filter(|g| eq_ci(g, n)));
                let got = hit
                    .or_else(|| best.and_then(|a| a.service_name.as_deref()))
                    .unwrap_or("-");
                fields.push(FieldCheck {
                    field: format!("services[{i}].name"),
                    expected: n.clone(),
                    got: got.into(),
                    ok: hit.is_some(),
                });
            }
            if s.binary_path.is_some() || s.binary_path_contains.is_some() {
                let exp = s.binary_path.clone().unwrap_or_else(|| {
                    format!("*{}*", s.binary_path_contains.as_deref().unwrap_or(""))
                });
                let hit = pair
                    .iter()
                    .flat_map(|a| services_of(a))
                    .find_map(|(gn, gp)| {
                        (name_ok(s, gn) && path_ok(s, gp)).then_some(gp).flatten()
                    });
                let got = hit
                    .or_else(|| best.and_then(|a| a.binary_path.as_deref()))
                    .unwrap_or("-");
                fields.push(FieldCheck {
                    field: format!("services[{i}].binary_path"),
                    expected: exp,
                    got: got.into(),
                    ok: hit.is_some(),
                });
            }
        }
        for (i, u) in t.expect.uploads.iter().enumerate().filter(|_| readable) {
            let want = u.name.trim_start_matches('\\');
            let same =
                |g: &&crate::event::alert::Upload| eq_ci(g.name.trim_start_matches('\\'), want);
            let hit = pair.iter().flat_map(|a| a.uploads.iter()).find(same);
            fields.push(FieldCheck {
                field: format!("uploads[{i}].name"),
                expected: u.name.clone(),
                got: hit.map_or("-".into(), |g| g.name.clone()),
                ok: hit.is_some(),
            });
            if let Some(b) = u.bytes {
                // The truth sums every handle that wrote the name in the capture; attacks far apart
                // are separate alerts, so sum over all of the pair's alerts.
                let got = hit.map(|_| {
                    pair.iter()
                        .flat_map(|a| a.uploads.iter())
                        .filter(same)
                        .map(|g| g.size)
                        .sum::<u64>()
                });
                fields.push(FieldCheck {
                    field: format!("uploads[{i}].bytes"),
                    expected: b.to_string(),
                    got: got.map_or("-".into(), |x| x.to_string()),
                    ok: got == Some(b),
                });
            }
            if let Some(h) = &u.sha256 {
                let got = hit.and_then(|g| g.sha256.clone());
                fields.push(FieldCheck {
                    field: format!("uploads[{i}].sha256"),
                    expected: h.clone(),
                    got: got.clone().unwrap_or_else(|| "-".into()),
                    ok: got.is_some_and(|g| eq_ci(&g, h)),
                });
            }
        }
    }
    let attribution_ok = match (&t.tool, t.verdict == Verdict::Positive && !pair.is_empty()) {
        (Some(tool), true) => Some(pair.iter().any(|a| tool_accepts(tool, &a.tool))),
        _ => None,
    };
    let got_tool = best.map(|a| a.tool.clone());
    let ok = !matches!(status, Status::Missed | Status::FalseAlert | Status::Silent);
    CaptureScore {
        capture: case.capture.display().to_string(),
        verdict: t.verdict.clone(),
        visibility: t.visibility.clone(),
        expected_technique: t.technique.clone(),
        expected_tool: t.tool.clone(),
        status,
        technique_alerts: techs.len(),
        pair_alerts: pair.len(),
        got_technique: best.map(|a| a.technique.as_str().to_string()),
        got_tool,
        fields,
        attribution_ok,
        signals,
        visibility_records: vis,
        ok,
    }
}

/// Totals over a run.
#[derive(Clone, Debug, Serialize, Default, PartialEq)]
pub struct Totals {
    pub captures: usize,
    pub visible_positives: usize,
    pub detected: usize,
    /// detected / visible_positives (1.0 when there are none).
    pub recall: f64,
    pub encrypted_positives: usize,
    pub encrypted_with_visibility: usize,
    pub negatives: usize,
    pub negatives_alerting: usize,
    pub false_technique_alerts: usize,
    pub fields_checked: usize,
    pub fields_right: usize,
    pub field_accuracy: f64,
    pub attribution_checked: usize,
    pub attribution_right: usize,
    pub attribution_accuracy: f64,
}

#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub captures: Vec<CaptureScore>,
    pub totals: Totals,
    pub ok: bool,
}

fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 {
        1.0
    } else {
        ((a as f64 / b as f64) * 1000.0).round() / 1000.0
    }
}

impl Report {
    pub fn new(captures: Vec<CaptureScore>) -> Report {
        let mut t = Totals {
            captures: captures.len(),
            ..Default::default()
        };
        for c in &captures {
            match c.status {
                Status::Detected => {
                    t.visible_positives += 1;
                    t.detected += 1;
                }
                Status::Missed => t.visible_positives += 1,
                Status::Quiet => t.negatives += 1,
                Status::FalseAlert => {
                    t.negatives += 1;
                    t.negatives_alerting += 1;
                    t.false_technique_alerts += c.technique_alerts;
                }
                Status::Visibility => {
                    t.encrypted_positives += 1;
                    t.encrypted_with_visibility += 1;
                }
                Status::Silent => t.encrypted_positives += 1,
            }
            t.fields_checked += c.fields.len();
            t.fields_right += c.fields.iter().filter(|f| f.ok).count();
            if let Some(a) = c.attribution_ok {
                t.attribution_checked += 1;
                t.attribution_right += a as usize;
            }
        }
        t.recall = ratio(t.detected, t.visible_positives);
        t.field_accuracy = ratio(t.fields_right, t.fields_checked);
        t.attribution_accuracy = ratio(t.attribution_right, t.attribution_checked);
        let ok = captures.iter().all(|c| c.ok);
        Report {
            captures,
            totals: t,
            ok,
        }
    }

    /// Every visible positive detected and no negative alerting (and no encrypted positive silent).
    pub fn all_ok(&self) -> bool {
        self.ok
    }

    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }

    /// A plain-text table: capture, expected, got, fields right/checked (wrong ones listed), tool.
    pub fn table(&self) -> String {
        let mut rows: Vec<[String; 6]> = vec![[
            "capture".into(),
            "expected".into(),
            "got".into(),
            "fields".into(),
            "tool (expected/got)".into(),
            "result".into(),
        ]];
        let mut wrong_fields: Vec<String> = Vec::new();
        for c in &self.captures {
            let expected = match c.verdict {
                Verdict::Negative => format!("negative/{}", c.visibility),
                Verdict::Positive => format!(
                    "{}/{}",
                    c.expected_technique.as_deref().unwrap_or("positive"),
                    c.visibility
                ),
            };
            let got = if c.technique_alerts == 0 {
                if c.visibility_records > 0 {
                    "visibility".to_string()
                } else if c.signals > 0 {
                    format!("{} signal(s)", c.signals)
                } else {
                    "-".to_string()
                }
            } else {
                format!(
                    "{} x{}",
                    c.got_technique.as_deref().unwrap_or("technique"),
                    c.technique_alerts
                )
            };
            let right = c.fields.iter().filter(|f| f.ok).count();
            let fields = if c.fields.is_empty() {
                "-".to_string()
            } else {
                format!("{right}/{}", c.fields.len())
            };
            let wrong: Vec<&str> = c
                .fields
                .iter()
                .filter(|f| !f.ok)
                .map(|f| f.field.as_str())
                .collect();
            let tool = match (&c.expected_tool, &c.got_tool, c.attribution_ok) {
                (None, None, _) => "-".into(),
                (e, g, a) => format!(
                    "{}/{}{}",
                    e.as_deref().unwrap_or("-"),
                    g.as_deref().unwrap_or("-"),
                    match a {
                        Some(false) => " !",
                        _ => "",
                    }
                ),
            };
            let result = match c.status {
                Status::Detected => "ok detected",
                Status::Quiet => "ok quiet",
                Status::Visibility => "ok visibility",
                Status::Missed => "MISSED",
                Status::FalseAlert => "FALSE ALERT",
                Status::Silent => "SILENT",
            };
            let name = Path::new(&c.capture)
                .components()
                .rev()
                .take(2)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .map(|x| x.as_os_str().to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join("/");
            if !wrong.is_empty() {
                wrong_fields.push(format!("  {name}: {}", wrong.join(", ")));
            }
            rows.push([name, expected, got, fields, tool, result.into()]);
        }
        // Columns as wide as their widest cell, up to MAX_COLUMN; longer cells are cut with an
        // ellipsis so that every row stays aligned (the wrong fields are listed below the table).
        const MAX_COLUMN: usize = 60;
        let mut widths = [0usize; 6];
        for r in &rows {
            for (i, cell) in r.iter().enumerate() {
                widths[i] = widths[i].max(cell.chars().count()).min(MAX_COLUMN);
            }
        }
        let mut s = String::new();
        for r in &rows {
            let line: Vec<String> = r
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    let w = widths[i];
                    if c.chars().count() > w {
                        let cut: String = c.chars().take(w - 1).collect();
                        format!("{cut}…")
                    } else {
                        format!("{c:w$}")
                    }
                })
                .collect();
            s.push_str(line.join("  ").trim_end());
            s.push('\n');
        }
        if !wrong_fields.is_empty() {
            s.push_str("\nwrong fields:\n");
            for w in &wrong_fields {
                s.push_str(w);
                s.push('\n');
            }
        }
        let t = &self.totals;
        s.push_str(&format!(
            "\nrecall on visible positives {}/{} ({:.1}%); negatives alerting {}/{} ({} false technique alerts); \
             smb3-encrypted positives with a visibility record {}/{}; field accuracy {}/{} ({:.1}%); \
             attribution {}/{} ({:.1}%); {}\n",
            t.detected,
            t.visible_positives,
            t.recall * 100.0,
            t.negatives_alerting,
            t.negatives,
            t.false_technique_alerts,
            t.encrypted_with_visibility,
            t.encrypted_positives,
            t.fields_right,
            t.fields_checked,
            t.field_accuracy * 100.0,
            t.attribution_right,
            t.attribution_checked,
            t.attribution_accuracy * 100.0,
            if self.ok { "OK" } else { "FAIL" }
        ));
        s
    }
}
