//! What a DCE-RPC response says about its call when the request was never seen (a server→client
//! only capture: a span port or tap delivering one direction). A response carries its call_id and
//! context id but no opnum, so the call is inferred from two things the responses do carry:
//!
//! - **The endpoint**, from the bind_ack's secondary address: `\PIPE\ntsvcs` or `\PIPE\svcctl` is
//!   the service control manager ([MS-SCMR] 2.1), `\PIPE\atsvc` serves both atsvc and
//!   ITaskSchedulerService ([MS-TSCH] 2.1). The abstract syntax is only in the bind, and over TCP
//!   the secondary address is a port number, which names no interface.
//! - **The response's NDR layout** ([`Shape`]): [MS-SCMR] 3.1.4 gives every call's `[out]`
//!   parameters, so each response has a size and structure, e.g. ROpenSCManagerW → context handle
//!   (20) + status; RCreateServiceW / RCreateServiceWOW64W → lpdwTagId pointer (+ value) + service
//!   handle (20) + status; RStartServiceW / RDeleteService → status; RCloseServiceHandle → zeroed
//!   handle + status; RControlService / RQueryServiceStatus → SERVICE_STATUS (28) + status;
//!   RChangeServiceConfigW → tag pointer (+ value) + status. [MS-TSCH]: NetrJobAdd → job id +
//!   status; SchRpcRegisterTask → actual path (unique string) + error info pointer + HRESULT;
//!   SchRpcRun → GUID + HRESULT; SchRpcHighestVersion → version (high word 1) + HRESULT.
//!
//! [`ScmSequence`] then reads the order on one SCM association: the first handle a server returns
//! is the SCM's (every session starts with ROpenSCManagerW / ROpenSCManager2), later ones are
//! service handles. Every result is an inference and is logged as one (`inferred_operation`).
//!
//! # Ambiguities (what a shape cannot tell apart)
//! - A 24-byte handle response is ROpenServiceW, ROpenSCManagerW or RLockServiceDatabase; a status
//!   alone is RStartServiceW, RDeleteService, RSetServiceStatus or RNotifyBootConfigStatus.
//! - A 32-byte response is RCreateServiceW with a tag (referent, tag, handle, status) or a
//!   SERVICE_STATUS (service type, state 1–7, …): a valid service type with a valid state is read
//!   as SERVICE_STATUS.
//! - A fault names no call: on the SCM it is a call the server refused to run (`Refused`).
//!
//! # Under packet privacy (the stub is ciphertext)
//! Over TCP the interface comes from the endpoint mapper's `ept_map` answer (the tower names the
//! interface UUID and the port; [`Endpoint::of_interface`]), and the stub's exact length is still
//! in the clear: frag_length less the header, the response's fixed part, the sec_trailer, the
//! verifier and the trailer's `auth_pad_length` ([`crate::dcerpc::pdu::split_auth`]). The SCM's
//! answers then have a size ([`Shape::Sealed`]) and the sizes of the calls that matter are fixed
//! ([MS-SCMR] 3.1.4, checked against the two-sided captures where the opnum is in the request):
//! 24 ROpenSCManagerW / ROpenServiceW / RCloseServiceHandle; 28 RCreateServiceW/A /
//! RCreateServiceWOW64W/A with a null tag pointer; 4 RStartServiceW/A / RDeleteService; 8
//! RChangeServiceConfigW/A with a null tag pointer; 32 RQueryServiceStatus / RControlService (or
//! a create with a tag: not read as a create). A sealed answer of any other size is a query
//! (RQueryServiceConfigW, REnumServicesStatusW…), after which a 28-byte answer is not read as a
//! create: RQueryServiceConfig2W with a 16-byte buffer is also 28 bytes (4 + 16 + 4 + 4), and the
//! consoles that ask it (services.msc) enumerate first.

use super::interfaces;
use super::ndr::{NdrReader, Syntax};
use serde::Serialize;

/// The interface a bind_ack's secondary address names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endpoint {
    /// `\PIPE\ntsvcs`, `\PIPE\svcctl`: the service control manager.
    Scm,
    /// `\PIPE\atsvc`: atsvc (NetrJob*) or ITaskSchedulerService (SchRpc*).
    TaskScheduler,
    /// The endpoint mapper (TCP 135, `\PIPE\epmapper`): its `ept_map` answers name an
    /// interface and its port.
    EndpointMapper,
    Other,
}

impl Endpoint {
    /// From a secondary address (`\PIPE\ntsvcs`, `\pipe\svcctl`, `\\PIPE\\atsvc`…; a port over
    /// TCP is `Other`).
    pub fn of_sec_addr(sec_addr: &str) -> Endpoint {
        let name = sec_addr.trim_end_matches('\0').trim_start_matches('\\');
        if name == EPM_PORT_ADDR {
            return Endpoint::EndpointMapper;
        }
        let name = match name.get(..5) {
            Some(p) if p.eq_ignore_ascii_case("pipe\\") => &name[5..],
            _ => return Endpoint::Other,
        };
        let name = name.trim_start_matches('\\');
        if name.eq_ignore_ascii_case("ntsvcs") || name.eq_ignore_ascii_case("svcctl") {
            Endpoint::Scm
        } else if name.eq_ignore_ascii_case("atsvc") {
            Endpoint::TaskScheduler
        } else if name.eq_ignore_ascii_case("epmapper") {
            Endpoint::EndpointMapper
        } else {
            Endpoint::Other
        }
    }

    /// From an interface UUID (an `ept_map` answer's tower): svcctl is the SCM, atsvc and
    /// ITaskSchedulerService the task scheduler.
    pub fn of_interface(uuid: &str) -> Endpoint {
        match uuid {
            interfaces::SVCCTL => Endpoint::Scm,
            interfaces::ATSVC | interfaces::ITASKSCHEDULERSERVICE => Endpoint::TaskScheduler,
            interfaces::EPMAPPER => Endpoint::EndpointMapper,
            _ => Endpoint::Other,
        }
    }
}

/// The secondary address an endpoint mapper's bind_ack gives over TCP: its port, 135.
const EPM_PORT_ADDR: &str = "135";

/// The layout of one response stub (NDR 2.0), as far as the endpoint's calls give layouts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Shape {
    /// SCM: a context handle and a status. `zero`: the handle is all zeros (RCloseServiceHandle's
    /// answer, or an open that failed).
    Handle { zero: bool, status: u32 },
    /// SCM: lpdwTagId pointer (+ tag), a service handle and a status (RCreateServiceW/A,
    /// RCreateServiceWOW64W/A, RCreateWowService).
    Create { handle: bool, status: u32 },
    /// SCM: SERVICE_STATUS and a status (RControlService, RQueryServiceStatus).
    ServiceStatus { state: u32, status: u32 },
    /// SCM: lpdwTagId pointer (+ tag) and a status (RChangeServiceConfigW/A).
    TagOnly { status: u32 },
    /// A status alone (SCM: RStartServiceW, RDeleteService…; tasks: NetrJobDel, SchRpcDelete…).
    Status(u32),
    /// atsvc NetrJobAdd: the new job's id and a status.
    JobId { job: u32, status: u32 },
    /// SchRpcHighestVersion: the version (high word 1) and an HRESULT.
    Version(u32),
    /// SchRpcRegisterTask: the task's actual path, an error-info pointer and an HRESULT.
    TaskPath { path: String, status: u32 },
    /// SchRpcRun: the running instance's GUID and an HRESULT.
    Guid { status: u32 },
    /// Any other layout (or an interface without layouts): its length and last four bytes.
    Other { len: usize },
    /// A whole stub under packet privacy: its exact length, nothing else.
    Sealed { len: usize },
}

const HANDLE: usize = 20;
const STATUS: usize = 4;
const SERVICE_STATUS: usize = 28;
/// SERVICE_STATUS dwServiceType bits ([MS-SCMR] 2.2.47): kernel/file-system driver, own or share
/// process, interactive.
const SERVICE_TYPE_BITS: u32 = 0x1 | 0x2 | 0x10 | 0x20 | 0x40 | 0x80 | 0x100;

impl Shape {
    /// The response's status (Win32 error or HRESULT), where its layout has one.
    pub fn status(&self) -> Option<u32> {
        match self {
            Shape::Handle { status, .. }
            | Shape::Create { status, .. }
            | Shape::ServiceStatus { status, .. }
            | Shape::TagOnly { status }
            | Shape::Status(status)
            | Shape::JobId { status, .. }
            | Shape::TaskPath { status, .. }
            | Shape::Guid { status } => Some(*status),
            Shape::Version(_) => Some(0),
            Shape::Other { .. } | Shape::Sealed { .. } => None,
        }
    }
}

fn u32_at(stub: &[u8], at: usize, be: bool) -> Option<u32> {
    let b: [u8; 4] = stub.get(at..at.checked_add(4)?)?.try_into().ok()?;
    Some(if be {
        u32::from_be_bytes(b)
    } else {
        u32::from_le_bytes(b)
    })
}

fn all_zero(b: &[u8]) -> bool {
    b.iter().all(|x| *x == 0)
}

/// Reads one response stub of `endpoint` (NDR 2.0; `be`: big-endian data representation).
pub fn classify(endpoint: Endpoint, stub: &[u8], be: bool) -> Shape {
    let other = Shape::Other { len: stub.len() };
    let Some(status) = u32_at(stub, stub.len().saturating_sub(STATUS), be) else {
        return other;
    };
    match endpoint {
        Endpoint::Scm => scm(stub, be, status).unwrap_or(other),
        Endpoint::TaskScheduler => tasks(stub, be, status).unwrap_or(other),
        Endpoint::EndpointMapper | Endpoint::Other => other,
    }
}

fn scm(stub: &[u8], be: bool, status: u32) -> Option<Shape> {
    let handle_at = |at: usize| stub.get(at..at + HANDLE).map(|h| !all_zero(h));
    Some(match stub.len() {
        STATUS => Shape::Status(status),
        // RChangeServiceConfigW: a null tag pointer, or a referent and the tag.
        8 if u32_at(stub, 0, be)? == 0 => Shape::TagOnly { status },
        12 if u32_at(stub, 0, be)? != 0 => Shape::TagOnly { status },
        24 => Shape::Handle {
            zero: !handle_at(0)?,
            status,
        },
        // Null tag pointer, then the handle.
        28 if u32_at(stub, 0, be)? == 0 => Shape::Create {
            handle: handle_at(4)?,
            status,
        },
        32 => {
            let (kind, state) = (u32_at(stub, 0, be)?, u32_at(stub, 4, be)?);
            if kind != 0 && kind & !SERVICE_TYPE_BITS == 0 && (1..=7).contains(&state) {
                debug_assert_eq!(SERVICE_STATUS + STATUS, 32);
                Shape::ServiceStatus { state, status }
            } else if kind != 0 {
                // A tag referent, the tag, then the handle.
                Shape::Create {
                    handle: handle_at(8)?,
                    status,
                }
            } else {
                return None;
            }
        }
        _ => return None,
    })
}

fn tasks(stub: &[u8], be: bool, status: u32) -> Option<Shape> {
    Some(match stub.len() {
        STATUS => Shape::Status(status),
        8 => {
            let v = u32_at(stub, 0, be)?;
            // SchRpcHighestVersion answers 0x0001_000x; job ids count up from 1.
            if v >> 16 == 1 && status == 0 {
                Shape::Version(v)
            } else {
                Shape::JobId { job: v, status }
            }
        }
        20 => Shape::Guid { status },
        _ => task_path(stub, be, status)?,
    })
}

/// SchRpcRegisterTask's `[out, string] wchar_t** pActualPath` (a unique pointer to a conformant
/// varying string), `[out] PTASK_XML_ERROR_INFO* pErrorInfo` (a unique pointer) and the HRESULT:
/// the layout with nothing after it. Task paths start with a backslash ([MS-TSCH] 2.3.11).
fn task_path(stub: &[u8], be: bool, status: u32) -> Option<Shape> {
    let mut r = NdrReader::new(stub, be, Syntax::Ndr20);
    let path = r.unique_string(2)??;
    r.align(4)?;
    let _error_info = r.pointer()?;
    if r.remaining() != STATUS || !path.starts_with('\\') {
        return None;
    }
    Some(Shape::TaskPath { path, status })
}

/// A call as inferred from its response and its place in the association's sequence.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum InferredOp {
    /// The first handle the SCM returned: ROpenSCManagerW / ROpenSCManager2.
    OpenScManager,
    /// A later handle, or a zeroed one with an error: ROpenServiceW (or RLockServiceDatabase).
    OpenService,
    /// A zeroed handle after success: RCloseServiceHandle.
    CloseHandle,
    /// A sealed handle-sized answer after the SCM's: ROpenServiceW or RCloseServiceHandle (the
    /// zeroed handle of a close is ciphertext).
    OpenOrCloseHandle,
    /// RCreateServiceW / RCreateServiceWOW64W / RCreateWowService (tag pointer + new handle).
    CreateService,
    /// RChangeServiceConfigW/A (tag pointer + status).
    ChangeServiceConfig,
    /// A status alone after a service handle: RStartServiceW or RDeleteService.
    StartOrDelete,
    /// RControlService / RQueryServiceStatus.
    ServiceStatus,
    /// A fault: the server refused to run a call whose opnum the capture does not show.
    Refused,
    /// atsvc NetrJobAdd.
    JobAdd,
    /// SchRpcRegisterTask.
    RegisterTask,
    /// SchRpcRun.
    RunTask,
    /// SchRpcHighestVersion.
    HighestVersion,
    /// epmapper ept_map: the answer names an interface and its TCP port.
    EptMap,
    /// Nothing the layouts tell.
    Unknown,
}

impl InferredOp {
    /// The operation name for `dce_rpc.operation`, marked as inferred.
    pub fn operation(self) -> &'static str {
        match self {
            InferredOp::OpenScManager => "ROpenSCManagerW (inferred)",
            InferredOp::OpenService => "ROpenServiceW (inferred)",
            InferredOp::CloseHandle => "RCloseServiceHandle (inferred)",
            InferredOp::OpenOrCloseHandle => "ROpenServiceW or RCloseServiceHandle (inferred)",
            InferredOp::CreateService => "RCreateServiceW (inferred)",
            InferredOp::ChangeServiceConfig => "RChangeServiceConfigW (inferred)",
            InferredOp::StartOrDelete => "RStartServiceW or RDeleteService (inferred)",
            InferredOp::ServiceStatus => "RQueryServiceStatus or RControlService (inferred)",
            InferredOp::Refused => "refused call (inferred)",
            InferredOp::JobAdd => "NetrJobAdd (inferred)",
            InferredOp::RegisterTask => "SchRpcRegisterTask (inferred)",
            InferredOp::RunTask => "SchRpcRun (inferred)",
            InferredOp::HighestVersion => "SchRpcHighestVersion (inferred)",
            InferredOp::EptMap => "ept_map (inferred)",
            InferredOp::Unknown => "unknown (response only)",
        }
    }

    /// The interface name (Zeek's) the inferred call belongs to.
    pub fn endpoint(self, e: Endpoint) -> &'static str {
        match (self, e) {
            (InferredOp::RegisterTask | InferredOp::RunTask | InferredOp::HighestVersion, _) => {
                "ITaskSchedulerService"
            }
            (_, Endpoint::Scm) => "svcctl",
            (_, Endpoint::TaskScheduler) => "atsvc",
            (_, Endpoint::EndpointMapper) => "epmapper",
            (_, Endpoint::Other) => "unknown",
        }
    }
}

/// The order of one association's responses, for the calls a shape alone cannot name.
#[derive(Clone, Debug, Default)]
pub struct ScmSequence {
    scm_opened: bool,
    service_handles: u32,
    /// A sealed answer of a query's size came: a 28-byte one is no longer read as a create.
    sealed_query_seen: bool,
}

/// Sealed SCM answer sizes ([MS-SCMR] 3.1.4; see the module's notes).
const SEALED_HANDLE: usize = HANDLE + STATUS;
const SEALED_CREATE: usize = 4 + HANDLE + STATUS;
const SEALED_CHANGE: usize = 4 + STATUS;
const SEALED_SERVICE_STATUS: usize = SERVICE_STATUS + STATUS;

impl ScmSequence {
    /// The call behind the next response (`None`: a fault) on an association with `endpoint`.
    pub fn next(&mut self, endpoint: Endpoint, shape: Option<&Shape>) -> InferredOp {
        let Some(shape) = shape else {
            // Refused before it ran: only meaningful once the SCM was opened.
            return if self.scm_opened && endpoint == Endpoint::Scm {
                InferredOp::Refused
            } else {
                InferredOp::Unknown
            };
        };
        match (endpoint, shape) {
            (Endpoint::Scm, Shape::Sealed { len }) => self.sealed_scm(*len),
            (
                Endpoint::Scm,
                Shape::Handle {
                    zero: false,
                    status: 0,
                },
            ) => {
                if self.scm_opened {
                    self.service_handles = self.service_handles.saturating_add(1);
                    InferredOp::OpenService
                } else {
                    self.scm_opened = true;
                    InferredOp::OpenScManager
                }
            }
            (
                Endpoint::Scm,
                Shape::Handle {
                    zero: true,
                    status: 0,
                },
            ) if self.scm_opened => InferredOp::CloseHandle,
            // A zeroed handle with an error: an open that failed (ERROR_SERVICE_DOES_NOT_EXIST…).
            (Endpoint::Scm, Shape::Handle { zero: true, .. }) if self.scm_opened => {
                InferredOp::OpenService
            }
            (Endpoint::Scm, Shape::Create { handle, status }) if self.scm_opened => {
                if *handle && *status == 0 {
                    self.service_handles = self.service_handles.saturating_add(1);
                }
                InferredOp::CreateService
            }
            (Endpoint::Scm, Shape::TagOnly { .. }) if self.service_handles > 0 => {
                InferredOp::ChangeServiceConfig
            }
            (Endpoint::Scm, Shape::Status(_)) if self.service_handles > 0 => {
                InferredOp::StartOrDelete
            }
            (Endpoint::Scm, Shape::ServiceStatus { .. }) if self.service_handles > 0 => {
                InferredOp::ServiceStatus
            }
            (Endpoint::TaskScheduler, Shape::JobId { job, .. }) if *job != 0 => InferredOp::JobAdd,
            (Endpoint::TaskScheduler, Shape::TaskPath { .. }) => InferredOp::RegisterTask,
            (Endpoint::TaskScheduler, Shape::Guid { .. }) => InferredOp::RunTask,
            (Endpoint::TaskScheduler, Shape::Version(_)) => InferredOp::HighestVersion,
            _ => InferredOp::Unknown,
        }
    }

    /// An SCM answer under packet privacy, by its size and place alone.
    fn sealed_scm(&mut self, len: usize) -> InferredOp {
        match len {
            SEALED_HANDLE if !self.scm_opened => {
                self.scm_opened = true;
                InferredOp::OpenScManager
            }
            _ if !self.scm_opened => InferredOp::Unknown,
            SEALED_HANDLE => {
                self.service_handles = self.service_handles.saturating_add(1);
                InferredOp::OpenOrCloseHandle
            }
            SEALED_CREATE if !self.sealed_query_seen => {
                self.service_handles = self.service_handles.saturating_add(1);
                InferredOp::CreateService
            }
            STATUS => InferredOp::StartOrDelete,
            SEALED_CHANGE if self.service_handles > 0 => InferredOp::ChangeServiceConfig,
            SEALED_SERVICE_STATUS if self.service_handles > 0 => InferredOp::ServiceStatus,
            _ => {
                self.sealed_query_seen = true;
                InferredOp::Unknown
            }
        }
    }
}

#[cfg(test)]
#[path = "response_shapes_tests.rs"]
mod tests;
