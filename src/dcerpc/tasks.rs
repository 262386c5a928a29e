//! Remote scheduled tasks: ITaskSchedulerService (MS-TSCH 3.2.5.4, impacket `tsch.py`) and the
//! legacy atsvc interface (MS-TSCH 3.2.5.2, impacket `atsvc.py`).
//!
//! SchRpcRegisterTask carries the whole task definition as UTF-16 XML; the command line, its
//! arguments and the principal are pulled out of it by a tiny, bounded, tolerant tag extractor
//! (not an XML parser: it only needs the first `<Exec>` action and the `<Principal>`).

use super::ndr::{NdrReader, Syntax};
use super::svcctl::return_code;
use crate::event::DceArgs;

pub const OP_SCH_RPC_REGISTER_TASK: u16 = 1;
pub const OP_SCH_RPC_RETRIEVE_TASK: u16 = 2;
pub const OP_SCH_RPC_STOP: u16 = 11;
pub const OP_SCH_RPC_RUN: u16 = 12;
pub const OP_SCH_RPC_DELETE: u16 = 13;
pub const OP_SCH_RPC_RENAME: u16 = 14;
pub const OP_SCH_RPC_GET_LAST_RUN_INFO: u16 = 16;
pub const OP_SCH_RPC_GET_TASK_INFO: u16 = 17;
pub const OP_SCH_RPC_ENABLE_TASK: u16 = 19;

pub const OP_NETR_JOB_ADD: u16 = 0;

/// Most SchRpcRun arguments we decode.
pub const MAX_TASK_ARGS: usize = 64;

/// ITaskSchedulerService request stub → task path, and for registration the XML's action and
/// principal.
pub fn decode_tsch_request(
    opnum: u16,
    stub: &[u8],
    big_endian: bool,
    syntax: Syntax,
    a: &mut DceArgs,
) {
    let mut r = NdrReader::new(stub, big_endian, syntax);
    let _ = tsch_request(opnum, &mut r, a);
}

fn tsch_request(opnum: u16, r: &mut NdrReader<'_>, a: &mut DceArgs) -> Option<()> {
    match opnum {
        OP_SCH_RPC_REGISTER_TASK => {
            a.task_path = r.unique_string(2)?;
            let xml = r.varying_string(2)?;
            apply_task_xml(&xml, a);
        }
        OP_SCH_RPC_RUN => {
            a.task_path = Some(r.varying_string(2)?);
            let argc = r.u32()?;
            a.argc = Some(argc);
            if r.pointer()? != 0 {
                let n = usize::try_from(r.count()?).ok()?;
                let mut present = Vec::with_capacity(n.min(MAX_TASK_ARGS));
                for i in 0..n {
                    let p = r.pointer()?;
                    if i < MAX_TASK_ARGS {
                        present.push(p != 0);
                    }
                }
                let mut out = Vec::new();
                for non_null in present {
                    if non_null {
                        match r.varying_string(2) {
                            Some(s) => out.push(s),
                            None => break,
                        }
                    }
                }
                a.arguments = Some(out).filter(|v| !v.is_empty());
            }
        }
        OP_SCH_RPC_RETRIEVE_TASK
        | OP_SCH_RPC_STOP
        | OP_SCH_RPC_DELETE
        | OP_SCH_RPC_RENAME
        | OP_SCH_RPC_GET_LAST_RUN_INFO
        | OP_SCH_RPC_GET_TASK_INFO
        | OP_SCH_RPC_ENABLE_TASK => {
            a.task_path = Some(r.varying_string(2)?);
        }
        _ => {}
    }
    Some(())
}

/// ITaskSchedulerService response: the HRESULT; for registration also the path actually used.
pub fn decode_tsch_response(
    opnum: u16,
    stub: &[u8],
    big_endian: bool,
    syntax: Syntax,
    a: &mut DceArgs,
) {
    a.return_code = return_code(stub, big_endian);
    if opnum == OP_SCH_RPC_REGISTER_TASK && a.task_path.is_none() {
        let mut r = NdrReader::new(stub, big_endian, syntax);
        if let Some(Some(p)) = r.unique_string(2) {
            a.task_path = Some(p);
        }
    }
}

/// atsvc request: NetrJobAdd(ServerName, AT_INFO{JobTime, DaysOfMonth, DaysOfWeek, Flags, Command}).
pub fn decode_atsvc_request(
    opnum: u16,
    stub: &[u8],
    big_endian: bool,
    syntax: Syntax,
    a: &mut DceArgs,
) {
    if opnum != OP_NETR_JOB_ADD {
        return;
    }
    let mut r = NdrReader::new(stub, big_endian, syntax);
    let _ = (|| -> Option<()> {
        a.machine_name = r.unique_string(2)?;
        let _job_time = r.count()?; // DWORD_PTR: 4 bytes in NDR 2.0, 8 in NDR64
        let _days_of_month = r.u32()?;
        let _days_of_week = r.u8()?;
        let _flags = r.u8()?;
        if r.pointer()? != 0 {
            a.command = Some(r.varying_string(2)?);
        }
        Some(())
    })();
}

pub fn decode_atsvc_response(stub: &[u8], big_endian: bool, a: &mut DceArgs) {
    a.return_code = return_code(stub, big_endian);
}

/// Longest task XML (characters) the extractor looks at.
pub const MAX_TASK_XML_SCAN: usize = 256 * 1024;

/// Fills command, command_arguments, user_id and run_level from a task definition.
pub fn apply_task_xml(xml: &str, a: &mut DceArgs) {
    let xml = match xml.char_indices().nth(MAX_TASK_XML_SCAN) {
        Some((i, _)) => &xml[..i],
        None => xml,
    };
    let exec = section(xml, "Exec").unwrap_or(xml);
    a.command = tag_text(exec, "Command");
    a.command_arguments = tag_text(exec, "Arguments");
    let principal = section(xml, "Principal").unwrap_or(xml);
    a.user_id = tag_text(principal, "UserId").or_else(|| tag_text(principal, "GroupId"));
    a.run_level = tag_text(principal, "RunLevel");
}

/// The text between `<name …>` and the next `<`, entity-decoded and trimmed. Namespace prefixes
/// (`<t:Command>`) are ignored. Self-closing or missing → None.
pub fn tag_text(xml: &str, name: &str) -> Option<String> {
    let (_, content_start) = find_open(xml, name)?;
    let rest = xml.get(content_start..)?;
    let end = rest.find('<').unwrap_or(rest.len());
    let text = unescape(rest[..end].trim());
    if text.is_empty() {
        None
    } else {
        Some(text)
    }
}

/// The inside of the first `<name>…</name>` element (or to the end if unclosed).
fn section<'a>(xml: &'a str, name: &str) -> Option<&'a str> {
    let (_, start) = find_open(xml, name)?;
    let rest = xml.get(start..)?;
    let close = find_close(rest, name).unwrap_or(rest.len());
    rest.get(..close)
}

/// Finds the first opening tag with local name `name` (not self-closing): (tag start, content start).
fn find_open(xml: &str, name: &str) -> Option<(usize, usize)> {
    let mut from = 0;
    while let Some(rel) = xml.get(from..)?.find('<') {
        let at = from + rel;
        let after = xml.get(at + 1..)?;
        let gt = after.find('>')?;
        let tag = &after[..gt];
        // A '<' inside the candidate starts the next candidate: resume there, so every byte is
        // scanned a bounded number of times (no quadratic blow-up on "<<<<…>").
        if let Some(inner) = tag.rfind('<') {
            from = at + 1 + inner;
            continue;
        }
        from = at + 1;
        if tag.starts_with('/') || tag.starts_with('?') || tag.starts_with('!') {
            continue;
        }
        let tag_name = tag
            .split(|c: char| c.is_whitespace() || c == '/')
            .next()
            .unwrap_or("");
        let local = tag_name.rsplit(':').next().unwrap_or(tag_name);
        if local == name && !tag.ends_with('/') {
            return Some((at, at + 1 + gt + 1));
        }
    }
    None
}

fn find_close(xml: &str, name: &str) -> Option<usize> {
    let mut from = 0;
    while let Some(rel) = xml.get(from..)?.find("</") {
        let at = from + rel;
        let after = xml.get(at + 2..)?;
        let end = after.find('>')?;
        let tag = after[..end].trim();
        if let Some(inner) = tag.rfind('<') {
            from = at + 2 + inner;
            continue;
        }
        if tag.rsplit(':').next() == Some(name) {
            return Some(at);
        }
        from = at + 2;
    }
    None
}

fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dcerpc::svcctl::build::W;

    /// The XML impacket atexec.py registers (shape of `atexec.py` `gen_xml`).
    const XML: &str = r#"<?xml version="1.0" encoding="UTF-16"?>
<Task version="1.2" xmlns="http://schemas.microsoft.com/windows/2004/02/mit/task">
  <Triggers><CalendarTrigger><StartBoundary>2015-07-15T20:35:13.2757294</StartBoundary></CalendarTrigger></Triggers>
  <Principals>
    <Principal id="LocalSystem">
      <UserId>S-1-5-18</UserId>
      <RunLevel>HighestAvailable</RunLevel>
    </Principal>
  </Principals>
  <Settings><Enabled>true</Enabled><Hidden>true</Hidden></Settings>
  <Actions Context="LocalSystem">
    <Exec>
      <Command>cmd.exe</Command>
      <Arguments>/C whoami &gt; %windir%\Temp\abcdEFGH.tmp 2&gt;&amp;1</Arguments>
    </Exec>
  </Actions>
</Task>"#;

    #[test]
    fn task_xml_fields() {
        let mut a = DceArgs::default();
        apply_task_xml(XML, &mut a);
        assert_eq!(a.command.as_deref(), Some("cmd.exe"));
        assert_eq!(
            a.command_arguments.as_deref(),
            Some("/C whoami > %windir%\\Temp\\abcdEFGH.tmp 2>&1")
        );
        assert_eq!(a.user_id.as_deref(), Some("S-1-5-18"));
        assert_eq!(a.run_level.as_deref(), Some("HighestAvailable"));
        // Tolerant of prefixes, attributes, missing pieces and garbage.
        let mut b = DceArgs::default();
        apply_task_xml(
            "<t:Exec><t:Command x='1'>  powershell.exe </t:Command><Arguments/></t:Exec>",
            &mut b,
        );
        assert_eq!(
            (b.command.as_deref(), b.command_arguments.as_deref()),
            (Some("powershell.exe"), None)
        );
        let mut c = DceArgs::default();
        apply_task_xml("<<<<>>>< Command", &mut c);
        assert_eq!(c.command, None);
    }

    #[test]
    fn extractor_is_linear_on_hostile_markup() {
        // 64 Ki of '<' then '>' would be quadratic for a naive scan; this must finish at once.
        let hostile = format!("{}>{}", "<".repeat(65_536), "</".repeat(30_000));
        let mut a = DceArgs::default();
        apply_task_xml(&hostile, &mut a);
        assert_eq!(a.command, None);
        let nested = "<Exec><<Command>x</Command></Exec>";
        assert_eq!(tag_text(nested, "Command").as_deref(), Some("x"));
    }

    #[test]
    fn register_task_request_stub() {
        let mut w = W::new(false);
        w.unique_wstr(Some("\\abcdEFGH"))
            .wstr(XML)
            .u32(6)
            .unique_wstr(None)
            .u32(3)
            .u32(0)
            .ptr(0);
        let mut a = DceArgs::default();
        decode_tsch_request(1, &w.v, false, Syntax::Ndr20, &mut a);
        assert_eq!(a.task_path.as_deref(), Some("\\abcdEFGH"));
        assert_eq!(a.command.as_deref(), Some("cmd.exe"));
        assert_eq!(a.user_id.as_deref(), Some("S-1-5-18"));
    }

    #[test]
    fn run_and_delete_and_response() {
        let mut w = W::new(false);
        w.wstr("\\abcdEFGH").u32(0).ptr(0).u32(0).u32(0).ptr(0);
        let mut a = DceArgs::default();
        decode_tsch_request(12, &w.v, false, Syntax::Ndr20, &mut a);
        assert_eq!(
            (a.task_path.as_deref(), a.argc),
            (Some("\\abcdEFGH"), Some(0))
        );
        let mut w = W::new(false);
        w.wstr("\\T1").u32(0);
        let mut a = DceArgs::default();
        decode_tsch_request(13, &w.v, false, Syntax::Ndr20, &mut a);
        assert_eq!(a.task_path.as_deref(), Some("\\T1"));
        let mut w = W::new(false);
        w.unique_wstr(Some("\\T1")).ptr(0).u32(0x8007_0005);
        let mut a = DceArgs::default();
        decode_tsch_response(1, &w.v, false, Syntax::Ndr20, &mut a);
        assert_eq!(
            (a.task_path.as_deref(), a.return_code),
            (Some("\\T1"), Some(0x8007_0005))
        );
    }

    #[test]
    fn netr_job_add() {
        let mut w = W::new(false);
        w.unique_wstr(Some("\\\\10.0.0.5")).u32(0x0121_eac0).u32(0);
        w.v.extend_from_slice(&[0, 0x10]); // DaysOfWeek, Flags (JOB_NONINTERACTIVE)
        w.ptr(0x20004).wstr("cmd /c net user x y /add");
        let mut a = DceArgs::default();
        decode_atsvc_request(0, &w.v, false, Syntax::Ndr20, &mut a);
        assert_eq!(a.machine_name.as_deref(), Some("\\\\10.0.0.5"));
        assert_eq!(a.command.as_deref(), Some("cmd /c net user x y /add"));
    }
}
