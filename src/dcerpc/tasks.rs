//! Remote scheduled tasks: ITaskSchedulerService (MS-TSCH 3.2.5.4, impacket `tsch.py`) and the
//! legacy atsvc interface (MS-TSCH 3.2.5.2, impacket `atsvc.py`).
//!
//! SchRpcRegisterTask carries the whole task definition as UTF-16 XML; the command line, its
//! arguments and the principal are pulled out of it by a tiny, bounded, tolerant tag extractor
//! (not an XML parser: it only needs the first `<Exec>` action and the `<Principal>`).
//!
//! The decoders return typed records ([`TschRequest`], [`TschResponse`], [`JobAdd`]);
//! `dcerpc::stubs` maps them to the output schema.

use super::ndr::{NdrReader, Syntax};
use super::svcctl::return_code;

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

/// What a task definition's XML says about its first `<Exec>` action and its principal.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TaskDefinition {
    pub command: Option<String>,
    pub command_arguments: Option<String>,
    pub user_id: Option<String>,
    pub run_level: Option<String>,
}

/// One ITaskSchedulerService call's arguments, as far as they parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TschRequest {
    RegisterTask {
        task_path: Option<String>,
        /// None when the XML did not parse.
        definition: Option<TaskDefinition>,
    },
    Run {
        task_path: Option<String>,
        argc: Option<u32>,
        /// None when absent, empty or cut; at most MAX_TASK_ARGS.
        arguments: Option<Vec<String>>,
    },
    /// The calls that name a task and nothing the sensor reads besides (retrieve, stop, delete,
    /// rename, run info, task info, enable).
    OnTask {
        task_path: Option<String>,
    },
    Other,
}

/// An ITaskSchedulerService response: the HRESULT; for registration also the path actually used.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TschResponse {
    pub return_code: Option<u32>,
    pub registered_path: Option<String>,
}

/// An atsvc NetrJobAdd request: ServerName and AT_INFO's Command.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct JobAdd {
    pub machine_name: Option<String>,
    pub command: Option<String>,
}

/// ITaskSchedulerService request stub → task path, and for registration the XML's action and
/// principal.
pub fn parse_tsch_request(
    opnum: u16,
    stub: &[u8],
    big_endian: bool,
    syntax: Syntax,
) -> TschRequest {
    let mut r = NdrReader::new(stub, big_endian, syntax);
    match opnum {
        OP_SCH_RPC_REGISTER_TASK => {
            let task_path = r.unique_string(2);
            let definition = task_path
                .as_ref()
                .and_then(|_| r.varying_string(2))
                .map(|xml| task_definition(&xml));
            TschRequest::RegisterTask {
                task_path: task_path.flatten(),
                definition,
            }
        }
        OP_SCH_RPC_RUN => {
            let task_path = r.varying_string(2);
            let argc = task_path.as_ref().and_then(|_| r.u32());
            let arguments = argc.and_then(|_| r.unique_string_array(2, MAX_TASK_ARGS));
            TschRequest::Run {
                task_path,
                argc,
                arguments: arguments.flatten().filter(|v| !v.is_empty()),
            }
        }
        OP_SCH_RPC_RETRIEVE_TASK
        | OP_SCH_RPC_STOP
        | OP_SCH_RPC_DELETE
        | OP_SCH_RPC_RENAME
        | OP_SCH_RPC_GET_LAST_RUN_INFO
        | OP_SCH_RPC_GET_TASK_INFO
        | OP_SCH_RPC_ENABLE_TASK => TschRequest::OnTask {
            task_path: r.varying_string(2),
        },
        _ => TschRequest::Other,
    }
}

/// ITaskSchedulerService response stub.
pub fn parse_tsch_response(
    opnum: u16,
    stub: &[u8],
    big_endian: bool,
    syntax: Syntax,
) -> TschResponse {
    let mut registered_path = None;
    if opnum == OP_SCH_RPC_REGISTER_TASK {
        let mut r = NdrReader::new(stub, big_endian, syntax);
        registered_path = r.unique_string(2).flatten();
    }
    TschResponse {
        return_code: return_code(stub, big_endian),
        registered_path,
    }
}

/// atsvc request: NetrJobAdd(ServerName, AT_INFO{JobTime, DaysOfMonth, DaysOfWeek, Flags, Command});
/// None for the other opnums.
pub fn parse_atsvc_request(
    opnum: u16,
    stub: &[u8],
    big_endian: bool,
    syntax: Syntax,
) -> Option<JobAdd> {
    if opnum != OP_NETR_JOB_ADD {
        return None;
    }
    let mut r = NdrReader::new(stub, big_endian, syntax);
    let mut job = JobAdd::default();
    let _ = (|| -> Option<()> {
        job.machine_name = r.unique_string(2)?;
        let _job_time = r.count()?; // DWORD_PTR: 4 bytes in NDR 2.0, 8 in NDR64
        let _days_of_month = r.u32()?;
        let _days_of_week = r.u8()?;
        let _flags = r.u8()?;
        if r.pointer()? != 0 {
            job.command = Some(r.varying_string(2)?);
        }
        Some(())
    })();
    Some(job)
}

/// Longest task XML (characters) the extractor looks at.
pub const MAX_TASK_XML_SCAN: usize = 256 * 1024;

/// The command, arguments, user and run level of a task definition.
pub fn task_definition(xml: &str) -> TaskDefinition {
    let xml = match xml.char_indices().nth(MAX_TASK_XML_SCAN) {
        Some((i, _)) => &xml[..i],
        None => xml,
    };
    let exec = section(xml, "Exec").unwrap_or(xml);
    let principal = section(xml, "Principal").unwrap_or(xml);
    TaskDefinition {
        command: tag_text(exec, "Command"),
        command_arguments: tag_text(exec, "Arguments"),
        user_id: tag_text(principal, "UserId").or_else(|| tag_text(principal, "GroupId")),
        run_level: tag_text(principal, "RunLevel"),
    }
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
    use crate::dcerpc::interfaces::{ATSVC, ITASKSCHEDULERSERVICE};
    use crate::dcerpc::stubs::{request_args, response_args, task_definition as apply};
    use crate::dcerpc::svcctl::build::W;
    use crate::event::DceArgs;

    /// The output fields a task definition fills.
    fn xml_args(xml: &str, a: &mut DceArgs) {
        apply(task_definition(xml), a);
    }

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
        xml_args(XML, &mut a);
        assert_eq!(a.command.as_deref(), Some("cmd.exe"));
        assert_eq!(
            a.command_arguments.as_deref(),
            Some("/C whoami > %windir%\\Temp\\abcdEFGH.tmp 2>&1")
        );
        assert_eq!(a.user_id.as_deref(), Some("S-1-5-18"));
        assert_eq!(a.run_level.as_deref(), Some("HighestAvailable"));
        // Tolerant of prefixes, attributes, missing pieces and garbage.
        let mut b = DceArgs::default();
        xml_args(
            "<t:Exec><t:Command x='1'>  powershell.exe </t:Command><Arguments/></t:Exec>",
            &mut b,
        );
        assert_eq!(
            (b.command.as_deref(), b.command_arguments.as_deref()),
            (Some("powershell.exe"), None)
        );
        let mut c = DceArgs::default();
        xml_args("<<<<>>>< Command", &mut c);
        assert_eq!(c.command, None);
    }

    #[test]
    fn extractor_is_linear_on_hostile_markup() {
        // 64 Ki of '<' then '>' would be quadratic for a naive scan; this must finish at once.
        let hostile = format!("{}>{}", "<".repeat(65_536), "</".repeat(30_000));
        let mut a = DceArgs::default();
        xml_args(&hostile, &mut a);
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
        request_args(ITASKSCHEDULERSERVICE, 1, &w.v, false, Syntax::Ndr20, &mut a);
        assert_eq!(a.task_path.as_deref(), Some("\\abcdEFGH"));
        assert_eq!(a.command.as_deref(), Some("cmd.exe"));
        assert_eq!(a.user_id.as_deref(), Some("S-1-5-18"));
    }

    #[test]
    fn run_and_delete_and_response() {
        let mut w = W::new(false);
        w.wstr("\\abcdEFGH").u32(0).ptr(0).u32(0).u32(0).ptr(0);
        let mut a = DceArgs::default();
        request_args(
            ITASKSCHEDULERSERVICE,
            12,
            &w.v,
            false,
            Syntax::Ndr20,
            &mut a,
        );
        assert_eq!(
            (a.task_path.as_deref(), a.argc),
            (Some("\\abcdEFGH"), Some(0))
        );
        let mut w = W::new(false);
        w.wstr("\\T1").u32(0);
        let mut a = DceArgs::default();
        request_args(
            ITASKSCHEDULERSERVICE,
            13,
            &w.v,
            false,
            Syntax::Ndr20,
            &mut a,
        );
        assert_eq!(a.task_path.as_deref(), Some("\\T1"));
        let mut w = W::new(false);
        w.unique_wstr(Some("\\T1")).ptr(0).u32(0x8007_0005);
        let mut a = DceArgs::default();
        response_args(ITASKSCHEDULERSERVICE, 1, &w.v, false, Syntax::Ndr20, &mut a);
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
        request_args(ATSVC, 0, &w.v, false, Syntax::Ndr20, &mut a);
        assert_eq!(a.machine_name.as_deref(), Some("\\\\10.0.0.5"));
        assert_eq!(a.command.as_deref(), Some("cmd /c net user x y /add"));
    }
}
