//! Rules as data: settings (windows, thresholds), tool signatures and exceptions, read from TOML.
//!
//! A rule directory holds any number of `*.toml` files, read in name order. Each file may contain:
//!
//! ```toml
//! [settings]                      # at most one file may define it; missing keys take defaults
//! window_secs = 600               # sliding evidence window around an attack instance
//! sweep_window_secs = 300         # "many admin-share connects" window …
//! sweep_min_targets = 5           # … and how many distinct targets make a sweep
//! summary_interval_secs = 3600    # live mode: host summaries this often (packet time)
//! random_name_lengths = [4, 7, 8, 10, 16]
//!
//! [[tool]]                        # tried in file order; the first signature that matches wins
//! name = "impacket-psexec"
//! [[tool.signature]]              # every key given must match (AND); a tool matches if any signature does
//! why = "4-letter service running an 8-letter exe from %systemroot%"
//! service_name = '^[a-z]{4}$'     # regexes, case-insensitive: service_name display_name binary_path
//! binary_path = '^%systemroot%\\[a-z]{8}\.exe$'   # upload pipe machine_name task_path command call
//! # exact: technique ("service-create"|"service-modify"|"task-create"), transport ("smb_pipe"|"tcp"),
//! #   interface ("svcctl"|"atsvc"|"ITaskSchedulerService"), opnum (of any create/register call)
//! # booleans: binary_is_upload, smb (any SMB seen from source to target), stub_encrypted
//! # numbers: min_bind_contexts (contexts offered in one bind that included the interface), min_count
//!
//! [[exception]]                   # every key given must match (AND); a list matches if any entry does
//! name = "sccm-servers"           # required, reported in `suppressed_by`
//! comment = "why this is fine"
//! source = ["10.1.0.0/16", "10.9.9.9"]   # CIDR or address
//! target = ["10.2.3.4/32"]
//! user = ["svc_sccm", "CORP\\svc_*"]     # globs (* ? [..]), case-insensitive, on user or domain\user
//! service_name = ["CCMSETUP", "PSEXESVC"]
//! tool = ["paexec"]
//!
//! [[host]]                        # receiving hosts' stacks (Suricata's host-os-policy)
//! cidr = ["10.0.0.0/8", "fd00::/8"]     # CIDRs or addresses; the longest prefix wins
//! policy = "windows"              # first | last | bsd | linux | windows | unknown
//! rst = "exact"                   # optional: exact (RFC 5961) | in-window (RFC 793)
//! comment = "why"
//! ```
//!
//! Unknown keys are errors. Every error names the file, the line and the problem.

use crate::dcerpc::Transport;
use crate::event::alert::Technique;
use crate::flow::policy::{HostOs, HostPolicies, TargetPolicy};
use crate::flow::receiver::RstPolicy;
use regex::{Regex, RegexBuilder};
use serde::Deserialize;
use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use toml::Spanned;

/// Embedded defaults: (file name, contents).
pub const EMBEDDED: &[(&str, &str)] = &[
    ("settings.toml", include_str!("../../rules/settings.toml")),
    ("tools.toml", include_str!("../../rules/tools.toml")),
    (
        "exceptions.toml",
        include_str!("../../rules/exceptions.toml"),
    ),
    ("hosts.toml", include_str!("../../rules/hosts.toml")),
];

/// Largest compiled regex we accept from a rule file.
pub const MAX_RULE_REGEX_BYTES: usize = 1 << 20;

/// A rule file problem: file, line (1-based, 0 when unknown) and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleError {
    pub file: String,
    pub line: usize,
    pub message: String,
}

impl fmt::Display for RuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line > 0 {
            write!(f, "{}:{}: {}", self.file, self.line, self.message)
        } else {
            write!(f, "{}: {}", self.file, self.message)
        }
    }
}

impl std::error::Error for RuleError {}

/// Windows and thresholds.
#[derive(Clone, Debug, PartialEq)]
pub struct Settings {
    pub window_secs: u64,
    pub sweep_window_secs: u64,
    pub sweep_min_targets: u32,
    pub summary_interval_secs: u64,
    pub random_name_lengths: Vec<usize>,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            window_secs: 600,
            sweep_window_secs: 300,
            sweep_min_targets: 5,
            summary_interval_secs: 3600,
            random_name_lengths: vec![4, 7, 8, 10, 16],
        }
    }
}

/// One tool signature: every condition given must hold.
#[derive(Clone, Debug, Default)]
pub struct Signature {
    pub why: String,
    pub service_name: Option<Regex>,
    pub display_name: Option<Regex>,
    pub binary_path: Option<Regex>,
    pub upload: Option<Regex>,
    pub pipe: Option<Regex>,
    pub machine_name: Option<Regex>,
    pub task_path: Option<Regex>,
    pub command: Option<Regex>,
    pub call: Option<Regex>,
    pub technique: Option<Technique>,
    pub transport: Option<Transport>,
    pub interface: Option<String>,
    pub opnum: Option<u16>,
    pub binary_is_upload: Option<bool>,
    pub smb: Option<bool>,
    pub stub_encrypted: Option<bool>,
    pub min_bind_contexts: Option<u32>,
    pub min_count: Option<u32>,
}

#[derive(Clone, Debug)]
pub struct ToolRule {
    pub name: String,
    pub signatures: Vec<Signature>,
}

/// An address or a subnet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cidr {
    pub addr: IpAddr,
    pub prefix: u8,
}

impl Cidr {
    pub fn parse(s: &str) -> Result<Cidr, String> {
        let (a, p) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = a
            .trim()
            .parse()
            .map_err(|_| format!("bad address {a:?} in {s:?}"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match p {
            None => max,
            Some(p) => {
                let n: u8 = p
                    .trim()
                    .parse()
                    .map_err(|_| format!("bad prefix length {p:?} in {s:?}"))?;
                if n > max {
                    return Err(format!("prefix length {n} > {max} in {s:?}"));
                }
                n
            }
        };
        Ok(Cidr { addr, prefix })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        fn masked(bits: u128, width: u32, prefix: u8) -> u128 {
            if prefix == 0 {
                return 0;
            }
            let shift = width.saturating_sub(prefix as u32);
            if shift >= 128 {
                0
            } else {
                bits >> shift
            }
        }
        match (self.addr, ip) {
            (IpAddr::V4(a), IpAddr::V4(b)) => {
                masked(u32::from(a) as u128, 32, self.prefix)
                    == masked(u32::from(b) as u128, 32, self.prefix)
            }
            (IpAddr::V6(a), IpAddr::V6(b)) => {
                masked(u128::from(a), 128, self.prefix) == masked(u128::from(b), 128, self.prefix)
            }
            _ => false,
        }
    }
}

/// Translate a glob (`*`, `?`, `[abc]`, `[!abc]`) into an anchored case-insensitive regex.
pub fn glob_to_regex(glob: &str) -> Result<Regex, String> {
    let mut re = String::from("^");
    let mut chars = glob.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '*' => re.push_str(".*"),
            '?' => re.push('.'),
            '[' => {
                let mut class = String::from("[");
                if chars.peek() == Some(&'!') {
                    chars.next();
                    class.push('^');
                }
                let mut closed = false;
                let mut empty = true;
                for d in chars.by_ref() {
                    if d == ']' && !empty {
                        closed = true;
                        break;
                    }
                    empty = false;
                    if d == '\\' || d == '[' || d == '&' || d == '~' {
                        class.push('\\');
                    }
                    class.push(d);
                }
                if !closed {
                    return Err(format!("unclosed '[' in glob {glob:?}"));
                }
                class.push(']');
                re.push_str(&class);
            }
            c => re.push_str(&regex::escape(&c.to_string())),
        }
    }
    re.push('$');
    build_regex(&re).map_err(|e| format!("bad glob {glob:?}: {e}"))
}

fn build_regex(re: &str) -> Result<Regex, String> {
    RegexBuilder::new(re)
        .case_insensitive(true)
        .size_limit(MAX_RULE_REGEX_BYTES)
        .build()
        .map_err(|e| {
            e.to_string()
                .lines()
                .last()
                .unwrap_or("invalid regex")
                .trim()
                .to_string()
        })
}

/// An exception: matching attacks are still reported, with `suppressed_by = name`.
#[derive(Clone, Debug)]
pub struct Exception {
    pub name: String,
    pub comment: Option<String>,
    pub source: Vec<Cidr>,
    pub target: Vec<Cidr>,
    pub user: Vec<Regex>,
    pub service_name: Vec<Regex>,
    pub tool: Vec<String>,
}

/// What an exception is checked against.
#[derive(Clone, Copy, Debug)]
pub struct ExceptionSubject<'a> {
    pub src: IpAddr,
    pub dst: Option<IpAddr>,
    pub user: Option<&'a str>,
    pub domain: Option<&'a str>,
    pub service_name: Option<&'a str>,
    pub tool: Option<&'a str>,
}

impl Exception {
    pub fn matches(&self, s: &ExceptionSubject<'_>) -> bool {
        if !self.source.is_empty() && !self.source.iter().any(|c| c.contains(s.src)) {
            return false;
        }
        if !self.target.is_empty() {
            match s.dst {
                Some(d) if self.target.iter().any(|c| c.contains(d)) => {}
                _ => return false,
            }
        }
        if !self.user.is_empty() {
            let Some(u) = s.user else { return false };
            let qualified = s.domain.map(|d| format!("{d}\\{u}"));
            let hit = self
                .user
                .iter()
                .any(|g| g.is_match(u) || qualified.as_deref().is_some_and(|q| g.is_match(q)));
            if !hit {
                return false;
            }
        }
        if !self.service_name.is_empty() {
            let Some(n) = s.service_name else {
                return false;
            };
            if !self.service_name.iter().any(|g| g.is_match(n)) {
                return false;
            }
        }
        if !self.tool.is_empty() {
            let Some(t) = s.tool else { return false };
            if !self.tool.iter().any(|x| x.eq_ignore_ascii_case(t)) {
                return false;
            }
        }
        true
    }
}

/// The whole rule set.
#[derive(Clone, Debug, Default)]
pub struct Rules {
    pub settings: Settings,
    pub tools: Vec<ToolRule>,
    pub exceptions: Vec<Exception>,
    /// Receiving hosts' policies by CIDR (`[[host]]`).
    pub hosts: HostPolicies,
}

// ---- file format (serde) ----

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawFile {
    settings: Option<Spanned<RawSettings>>,
    #[serde(default)]
    tool: Vec<RawTool>,
    #[serde(default)]
    exception: Vec<Spanned<RawException>>,
    #[serde(default)]
    host: Vec<Spanned<RawHost>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHost {
    cidr: Vec<Spanned<String>>,
    policy: Spanned<String>,
    rst: Option<Spanned<String>>,
    #[allow(dead_code)] // documentation for the reader of the file
    comment: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSettings {
    window_secs: Option<Spanned<u64>>,
    sweep_window_secs: Option<u64>,
    sweep_min_targets: Option<u32>,
    summary_interval_secs: Option<u64>,
    random_name_lengths: Option<Vec<usize>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTool {
    name: Spanned<String>,
    #[serde(default)]
    signature: Vec<Spanned<RawSignature>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSignature {
    why: Option<String>,
    service_name: Option<Spanned<String>>,
    display_name: Option<Spanned<String>>,
    binary_path: Option<Spanned<String>>,
    upload: Option<Spanned<String>>,
    pipe: Option<Spanned<String>>,
    machine_name: Option<Spanned<String>>,
    task_path: Option<Spanned<String>>,
    command: Option<Spanned<String>>,
    call: Option<Spanned<String>>,
    technique: Option<Spanned<String>>,
    transport: Option<Spanned<String>>,
    interface: Option<Spanned<String>>,
    opnum: Option<u16>,
    binary_is_upload: Option<bool>,
    smb: Option<bool>,
    stub_encrypted: Option<bool>,
    min_bind_contexts: Option<u32>,
    min_count: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawException {
    name: Spanned<String>,
    comment: Option<String>,
    #[serde(default)]
    source: Vec<Spanned<String>>,
    #[serde(default)]
    target: Vec<Spanned<String>>,
    #[serde(default)]
    user: Vec<Spanned<String>>,
    #[serde(default)]
    service_name: Vec<Spanned<String>>,
    #[serde(default)]
    tool: Vec<Spanned<String>>,
}

struct FileCtx<'a> {
    file: &'a str,
    text: &'a str,
}

impl FileCtx<'_> {
    fn line_of(&self, offset: usize) -> usize {
        let end = offset.min(self.text.len());
        self.text
            .as_bytes()
            .get(..end)
            .map_or(0, |b| b.iter().filter(|&&c| c == b'\n').count())
            + 1
    }
    fn err_at(&self, offset: usize, message: impl Into<String>) -> RuleError {
        RuleError {
            file: self.file.to_string(),
            line: self.line_of(offset),
            message: message.into(),
        }
    }
    fn regex(&self, s: &Option<Spanned<String>>, key: &str) -> Result<Option<Regex>, RuleError> {
        match s {
            None => Ok(None),
            Some(sp) => build_regex(sp.get_ref()).map(Some).map_err(|e| {
                self.err_at(
                    sp.span().start,
                    format!("bad regex in `{key}` {:?}: {e}", sp.get_ref()),
                )
            }),
        }
    }
}

pub fn parse_technique(s: &str) -> Option<Technique> {
    match s {
        "service-create" => Some(Technique::ServiceCreate),
        "service-modify" => Some(Technique::ServiceModify),
        "task-create" => Some(Technique::TaskCreate),
        _ => None,
    }
}

impl Rules {
    /// The defaults compiled into the binary.
    pub fn embedded() -> Rules {
        // The embedded files are tested (`embedded_rules_load`); failing here is a build defect.
        Rules::from_sources(EMBEDDED.iter().map(|(n, t)| (n.to_string(), t.to_string())))
            .unwrap_or_else(|e| panic!("embedded rules are invalid: {e}"))
    }

    /// Every `*.toml` in `dir`, in name order, replacing the defaults entirely. An empty directory
    /// is an error.
    pub fn load_dir(dir: &Path) -> Result<Rules, RuleError> {
        Rules::from_sources(Rules::read_dir_sources(dir)?)
    }

    /// The embedded defaults with `dir` layered over them by file name: `dir/exceptions.toml`
    /// replaces the embedded exceptions.toml, `dir/site.toml` adds to them, and embedded files
    /// that `dir` does not shadow stay (so an exceptions-only directory keeps the tool signatures).
    pub fn load_dir_over_defaults(dir: &Path) -> Result<Rules, RuleError> {
        let own = Rules::read_dir_sources(dir)?;
        let shadowed = |name: &str| {
            own.iter().any(|(p, _)| {
                Path::new(p)
                    .file_name()
                    .is_some_and(|f| f.to_string_lossy() == name)
            })
        };
        let mut sources: Vec<(String, String)> = EMBEDDED
            .iter()
            .filter(|(n, _)| !shadowed(n))
            .map(|(n, t)| (format!("<embedded>/{n}"), t.to_string()))
            .collect();
        sources.extend(own);
        Rules::from_sources(sources)
    }

    fn read_dir_sources(dir: &Path) -> Result<Vec<(String, String)>, RuleError> {
        let name = dir.display().to_string();
        let rd = std::fs::read_dir(dir).map_err(|e| RuleError {
            file: name.clone(),
            line: 0,
            message: format!("cannot read directory: {e}"),
        })?;
        let mut paths: Vec<PathBuf> = rd
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect();
        paths.sort();
        if paths.is_empty() {
            return Err(RuleError {
                file: name,
                line: 0,
                message: "no *.toml rule files".into(),
            });
        }
        let mut sources = Vec::new();
        for p in paths {
            let file = p.display().to_string();
            let text = std::fs::read_to_string(&p).map_err(|e| RuleError {
                file: file.clone(),
                line: 0,
                message: format!("cannot read: {e}"),
            })?;
            sources.push((file, text));
        }
        Ok(sources)
    }

    /// Parse one or more (file name, text) pairs into one rule set.
    pub fn from_sources<I: IntoIterator<Item = (String, String)>>(
        sources: I,
    ) -> Result<Rules, RuleError> {
        let mut rules = Rules::default();
        let mut settings_from: Option<String> = None;
        // Where each CIDR was mapped, to name both places when one is mapped twice.
        let mut host_from: Vec<(Cidr, String)> = Vec::new();
        for (file, text) in sources {
            let ctx = FileCtx {
                file: &file,
                text: &text,
            };
            let raw: RawFile = toml::from_str(&text).map_err(|e| {
                let line = e.span().map_or(0, |s| ctx.line_of(s.start));
                let msg = e.message().trim().to_string();
                RuleError {
                    file: file.clone(),
                    line,
                    message: msg,
                }
            })?;
            if let Some(s) = raw.settings {
                if let Some(prev) = &settings_from {
                    return Err(ctx.err_at(
                        s.span().start,
                        format!("[settings] already defined in {prev}"),
                    ));
                }
                settings_from = Some(file.clone());
                let start = s.span().start;
                let s = s.into_inner();
                let d = Settings::default();
                if let Some(w) = &s.window_secs {
                    if *w.get_ref() == 0 {
                        return Err(ctx.err_at(w.span().start, "window_secs must be > 0"));
                    }
                }
                let lengths = s.random_name_lengths.unwrap_or(d.random_name_lengths);
                if lengths.iter().any(|&l| l == 0 || l > 64) {
                    return Err(ctx.err_at(start, "random_name_lengths must be within 1..=64"));
                }
                rules.settings = Settings {
                    window_secs: s.window_secs.map_or(d.window_secs, |w| w.into_inner()),
                    sweep_window_secs: s.sweep_window_secs.unwrap_or(d.sweep_window_secs).max(1),
                    sweep_min_targets: s.sweep_min_targets.unwrap_or(d.sweep_min_targets).max(1),
                    summary_interval_secs: s
                        .summary_interval_secs
                        .unwrap_or(d.summary_interval_secs)
                        .max(1),
                    random_name_lengths: lengths,
                };
            }
            for t in raw.tool {
                let name = t.name.get_ref().trim().to_string();
                if name.is_empty() {
                    return Err(ctx.err_at(t.name.span().start, "tool name is empty"));
                }
                if t.signature.is_empty() {
                    return Err(ctx.err_at(
                        t.name.span().start,
                        format!("tool {name:?} has no [[tool.signature]]"),
                    ));
                }
                let mut sigs = Vec::new();
                for sp in t.signature {
                    let at = sp.span().start;
                    let r = sp.into_inner();
                    let technique = match &r.technique {
                        None => None,
                        Some(s) => Some(parse_technique(s.get_ref()).ok_or_else(|| {
                            ctx.err_at(
                                s.span().start,
                                format!(
                                    "unknown technique {:?} (service-create, service-modify, task-create)",
                                    s.get_ref()
                                ),
                            )
                        })?),
                    };
                    let transport = match &r.transport {
                        None => None,
                        Some(tr) => Some(Transport::from_name(tr.get_ref()).ok_or_else(|| {
                            ctx.err_at(
                                tr.span().start,
                                format!("unknown transport {:?} (smb_pipe, tcp)", tr.get_ref()),
                            )
                        })?),
                    };
                    if let Some(i) = &r.interface {
                        if !matches!(
                            i.get_ref().as_str(),
                            "svcctl" | "atsvc" | "ITaskSchedulerService"
                        ) {
                            return Err(ctx.err_at(
                                i.span().start,
                                format!(
                                    "unknown interface {:?} (svcctl, atsvc, ITaskSchedulerService)",
                                    i.get_ref()
                                ),
                            ));
                        }
                    }
                    let sig = Signature {
                        why: r.why.clone().unwrap_or_default(),
                        service_name: ctx.regex(&r.service_name, "service_name")?,
                        display_name: ctx.regex(&r.display_name, "display_name")?,
                        binary_path: ctx.regex(&r.binary_path, "binary_path")?,
                        upload: ctx.regex(&r.upload, "upload")?,
                        pipe: ctx.regex(&r.pipe, "pipe")?,
                        machine_name: ctx.regex(&r.machine_name, "machine_name")?,
                        task_path: ctx.regex(&r.task_path, "task_path")?,
                        command: ctx.regex(&r.command, "command")?,
                        call: ctx.regex(&r.call, "call")?,
                        technique,
                        transport,
                        interface: r.interface.as_ref().map(|t| t.get_ref().clone()),
                        opnum: r.opnum,
                        binary_is_upload: r.binary_is_upload,
                        smb: r.smb,
                        stub_encrypted: r.stub_encrypted,
                        min_bind_contexts: r.min_bind_contexts,
                        min_count: r.min_count,
                    };
                    if sig.is_empty() {
                        return Err(ctx.err_at(
                            at,
                            format!(
                                "signature of {name:?} has no condition (would match anything)"
                            ),
                        ));
                    }
                    sigs.push(sig);
                }
                rules.tools.push(ToolRule {
                    name,
                    signatures: sigs,
                });
            }
            for sp in raw.exception {
                let at = sp.span().start;
                let r = sp.into_inner();
                let name = r.name.get_ref().trim().to_string();
                if name.is_empty() {
                    return Err(ctx.err_at(r.name.span().start, "exception name is empty"));
                }
                let cidrs = |v: &[Spanned<String>]| -> Result<Vec<Cidr>, RuleError> {
                    v.iter()
                        .map(|s| {
                            Cidr::parse(s.get_ref())
                                .map_err(|e| ctx.err_at(s.span().start, format!("bad CIDR: {e}")))
                        })
                        .collect()
                };
                let globs = |v: &[Spanned<String>], key: &str| -> Result<Vec<Regex>, RuleError> {
                    v.iter()
                        .map(|s| {
                            glob_to_regex(s.get_ref())
                                .map_err(|e| ctx.err_at(s.span().start, format!("`{key}`: {e}")))
                        })
                        .collect()
                };
                let ex = Exception {
                    comment: r.comment.clone(),
                    source: cidrs(&r.source)?,
                    target: cidrs(&r.target)?,
                    user: globs(&r.user, "user")?,
                    service_name: globs(&r.service_name, "service_name")?,
                    tool: r.tool.iter().map(|t| t.get_ref().clone()).collect(),
                    name,
                };
                if ex.source.is_empty()
                    && ex.target.is_empty()
                    && ex.user.is_empty()
                    && ex.service_name.is_empty()
                    && ex.tool.is_empty()
                {
                    return Err(ctx.err_at(
                        at,
                        format!(
                            "exception {:?} has no condition (would suppress everything)",
                            ex.name
                        ),
                    ));
                }
                rules.exceptions.push(ex);
            }
            for sp in raw.host {
                let at = sp.span().start;
                let r = sp.into_inner();
                let os = HostOs::parse(r.policy.get_ref()).ok_or_else(|| {
                    ctx.err_at(
                        r.policy.span().start,
                        format!(
                            "unknown host policy {:?} ({})",
                            r.policy.get_ref(),
                            HostOs::NAMES
                        ),
                    )
                })?;
                let mut policy = TargetPolicy::of(os);
                if let Some(rst) = &r.rst {
                    policy.rst = match rst.get_ref().as_str() {
                        "exact" => RstPolicy::ExactMatch,
                        "in-window" => RstPolicy::InWindow,
                        other => {
                            return Err(ctx.err_at(
                                rst.span().start,
                                format!("unknown rst policy {other:?} (exact, in-window)"),
                            ))
                        }
                    };
                }
                if r.cidr.is_empty() {
                    return Err(ctx.err_at(at, "host entry without a cidr"));
                }
                for c in &r.cidr {
                    let line = ctx.line_of(c.span().start);
                    let cidr = Cidr::parse(c.get_ref())
                        .map_err(|e| ctx.err_at(c.span().start, format!("bad CIDR: {e}")))?;
                    if rules.hosts.insert(cidr.addr, cidr.prefix, policy).is_some() {
                        let prev = host_from
                            .iter()
                            .find(|(p, _)| p.prefix == cidr.prefix && p.contains(cidr.addr))
                            .map_or("another entry", |(_, w)| w.as_str());
                        return Err(ctx.err_at(
                            c.span().start,
                            format!("{:?} already has a host policy ({prev})", c.get_ref()),
                        ));
                    }
                    host_from.push((cidr, format!("{file}:{line}")));
                }
            }
        }
        Ok(rules)
    }

    /// The first exception matching, by name.
    pub fn exception_for(&self, s: &ExceptionSubject<'_>) -> Option<&str> {
        self.exceptions
            .iter()
            .find(|e| e.matches(s))
            .map(|e| e.name.as_str())
    }
}

impl Signature {
    fn is_empty(&self) -> bool {
        self.service_name.is_none()
            && self.display_name.is_none()
            && self.binary_path.is_none()
            && self.upload.is_none()
            && self.pipe.is_none()
            && self.machine_name.is_none()
            && self.task_path.is_none()
            && self.command.is_none()
            && self.call.is_none()
            && self.technique.is_none()
            && self.transport.is_none()
            && self.interface.is_none()
            && self.opnum.is_none()
            && self.binary_is_upload.is_none()
            && self.smb.is_none()
            && self.stub_encrypted.is_none()
            && self.min_bind_contexts.is_none()
            && self.min_count.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr_contains() {
        let c = Cidr::parse("10.1.0.0/16").unwrap();
        assert!(c.contains("10.1.200.3".parse().unwrap()));
        assert!(!c.contains("10.2.0.1".parse().unwrap()));
        let one = Cidr::parse("192.0.2.10").unwrap();
        assert!(one.contains("192.0.2.10".parse().unwrap()));
        assert!(!one.contains("192.0.2.11".parse().unwrap()));
        assert!(Cidr::parse("0.0.0.0/0")
            .unwrap()
            .contains("8.8.8.8".parse().unwrap()));
        assert!(Cidr::parse("10.0.0.0/33").is_err());
        assert!(Cidr::parse("10.0.0/8").is_err());
        let v6 = Cidr::parse("fe80::/10").unwrap();
        assert!(v6.contains("fe80::1".parse().unwrap()));
        assert!(!v6.contains("10.0.0.1".parse().unwrap()));
    }

    #[test]
    fn globs() {
        let g = glob_to_regex("svc_*").unwrap();
        assert!(g.is_match("SVC_sccm"));
        assert!(!g.is_match("xsvc_sccm"));
        assert!(glob_to_regex("PSEXESV?").unwrap().is_match("psexesvc"));
        assert!(glob_to_regex("a.b").unwrap().is_match("A.B"));
        assert!(!glob_to_regex("a.b").unwrap().is_match("axb"));
        assert!(glob_to_regex("[!x]y").unwrap().is_match("ay"));
        assert!(glob_to_regex("CORP\\svc").unwrap().is_match("corp\\SVC"));
        assert!(glob_to_regex("abc[").is_err());
    }

    fn hosts(text: &str) -> Result<Rules, RuleError> {
        Rules::from_sources([("hosts.toml".to_string(), text.to_string())])
    }

    #[test]
    fn host_policies_by_cidr() {
        let r = hosts(
            r#"
[[host]]
cidr = ["10.0.0.0/8", "fd00::/8"]
policy = "linux"
[[host]]
cidr = ["10.1.0.0/16"]
policy = "windows"
rst = "in-window"
comment = "old file servers"
[[host]]
cidr = ["0.0.0.0/0"]
policy = "unknown"
"#,
        )
        .unwrap();
        let at = |s: &str| r.hosts.lookup(s.parse().unwrap());
        assert_eq!(at("10.2.3.4"), TargetPolicy::of(HostOs::Linux));
        assert_eq!(at("fd00::1"), TargetPolicy::of(HostOs::Linux));
        let win = at("10.1.3.4");
        assert_eq!(win.tcp, TargetPolicy::of(HostOs::Windows).tcp);
        assert_eq!(win.rst, RstPolicy::InWindow);
        assert_eq!(at("192.0.2.1"), TargetPolicy::of(HostOs::Unknown));
        assert_eq!(at("2001:db8::1"), TargetPolicy::default());
        assert!(Rules::embedded().hosts.is_empty());
    }

    #[test]
    fn bad_host_entries_name_file_line_and_problem() {
        let e = hosts("[[host]]\ncidr = [\"10.0.0.0/8\"]\npolicy = \"solaris\"\n").unwrap_err();
        assert_eq!(e.line, 3, "{e}");
        assert!(e.message.contains("unknown host policy"), "{e}");
        let e = hosts("[[host]]\ncidr = [\"10.0.0.0/40\"]\npolicy = \"bsd\"\n").unwrap_err();
        assert_eq!((e.line, e.message.contains("bad CIDR")), (2, true), "{e}");
        let e = hosts("[[host]]\ncidr = [\"10.0.0.0/8\"]\npolicy = \"bsd\"\nrst = \"maybe\"\n")
            .unwrap_err();
        assert_eq!(e.line, 4, "{e}");
        let e = hosts(
            "[[host]]\ncidr = [\"10.0.0.0/8\"]\npolicy = \"bsd\"\n[[host]]\ncidr = [\"10.9.0.0/8\"]\npolicy = \"linux\"\n",
        )
        .unwrap_err();
        assert_eq!(e.line, 5, "{e}");
        assert!(e.to_string().contains("hosts.toml:2"), "{e}");
        let e = hosts("[[host]]\ncidr = [\"10.0.0.0/8\"]\npolicy = \"bsd\"\nos = 1\n").unwrap_err();
        assert!(e.message.contains("unknown field"), "{e}");
    }

    #[test]
    fn embedded_rules_load() {
        let r = Rules::embedded();
        assert!(r.tools.len() >= 12, "tools: {}", r.tools.len());
        assert_eq!(r.settings.window_secs, 600);
    }
}
