//! svcctl (MS-SCMR) stubs: the arguments of the calls that create, change, open, start, stop and
//! delete services, and the handles and return codes of their responses, so that OpenSCManager →
//! CreateService/OpenService → StartService/DeleteService chain by context handle.
//!
//! Field order follows the MS-SCMR IDL (cross-checked with impacket's `scmr.py` structures):
//! `[string]` parameters without `unique` are top-level reference pointers (no referent id on the
//! wire), `unique` ones carry a referent id and then, when non-null, the pointee. Decoding is
//! best-effort: whatever parsed before a short or inconsistent stub is kept.
//!
//! The decoders return typed records ([`SvcctlRequest`], [`SvcctlResponse`]); `dcerpc::stubs`
//! maps them to the output schema.

use super::ndr::{ContextHandle, NdrReader, Syntax};

pub const OP_CLOSE_SERVICE_HANDLE: u16 = 0;
pub const OP_CONTROL_SERVICE: u16 = 1;
pub const OP_DELETE_SERVICE: u16 = 2;
pub const OP_CHANGE_SERVICE_CONFIG_W: u16 = 11;
pub const OP_CREATE_SERVICE_W: u16 = 12;
pub const OP_OPEN_SC_MANAGER_W: u16 = 15;
pub const OP_OPEN_SERVICE_W: u16 = 16;
pub const OP_START_SERVICE_W: u16 = 19;
pub const OP_CHANGE_SERVICE_CONFIG_A: u16 = 23;
pub const OP_CREATE_SERVICE_A: u16 = 24;
pub const OP_OPEN_SC_MANAGER_A: u16 = 27;
pub const OP_OPEN_SERVICE_A: u16 = 28;
pub const OP_START_SERVICE_A: u16 = 31;
pub const OP_CREATE_SERVICE_WOW64_A: u16 = 44;
pub const OP_CREATE_SERVICE_WOW64_W: u16 = 45;
pub const OP_CREATE_WOW_SERVICE: u16 = 60;
pub const OP_OPEN_SC_MANAGER_2: u16 = 64;

/// Most StartService arguments we decode (argc is the client's claim; the rest is counted only).
pub const MAX_SERVICE_ARGS: usize = 64;

/// Opnums that create a service (the technique's core call).
pub fn is_create(opnum: u16) -> bool {
    matches!(
        opnum,
        OP_CREATE_SERVICE_W
            | OP_CREATE_SERVICE_A
            | OP_CREATE_SERVICE_WOW64_A
            | OP_CREATE_SERVICE_WOW64_W
            | OP_CREATE_WOW_SERVICE
    )
}

/// Opnums that change an existing service's configuration.
pub fn is_modify(opnum: u16) -> bool {
    matches!(
        opnum,
        OP_CHANGE_SERVICE_CONFIG_W | OP_CHANGE_SERVICE_CONFIG_A
    )
}

/// Opnums whose first parameter is not a context handle (the rest act on an SC or service handle).
fn first_param_is_handle(opnum: u16) -> bool {
    !matches!(
        opnum,
        9 | OP_OPEN_SC_MANAGER_W | OP_OPEN_SC_MANAGER_A | OP_OPEN_SC_MANAGER_2 | 52 | 53
    ) && opnum <= 64
}

/// A service's configuration as CreateService / ChangeServiceConfig send it, as far as it parsed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ServiceConfig {
    /// CreateService only (ChangeServiceConfig names the service by its handle).
    pub service_name: Option<String>,
    pub display_name: Option<String>,
    /// CreateService only: the access asked for on the new service.
    pub access: Option<u32>,
    pub service_type: Option<u32>,
    pub start_type: Option<u32>,
    pub error_control: Option<u32>,
    pub binary_path: Option<String>,
    pub start_name: Option<String>,
}

/// One svcctl call's arguments (the parameters after the context handle, where there is one).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SvcctlCall {
    OpenScManager {
        machine_name: Option<String>,
        database: Option<String>,
        access: Option<u32>,
    },
    CreateService(ServiceConfig),
    ChangeServiceConfig(ServiceConfig),
    OpenService {
        service_name: Option<String>,
        access: Option<u32>,
    },
    StartService {
        argc: Option<u32>,
        /// None when absent, empty or cut; at most MAX_SERVICE_ARGS.
        arguments: Option<Vec<String>>,
    },
    ControlService {
        control: Option<u32>,
    },
    /// An opnum whose arguments the sensor does not read, or a stub cut inside the handle.
    Other,
}

/// A svcctl request stub.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SvcctlRequest {
    /// The SC manager or service handle the call acts on (None for the opening calls).
    pub handle: Option<ContextHandle>,
    pub call: SvcctlCall,
}

/// A svcctl response stub: the return code, and the handle the opening and creating calls return.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SvcctlResponse {
    pub return_code: Option<u32>,
    /// None for an all-zero handle (a failed open: not a handle anyone can chain on).
    pub handle: Option<ContextHandle>,
}

/// Decodes a request stub (as far as it parses).
pub fn parse_request(opnum: u16, stub: &[u8], big_endian: bool, syntax: Syntax) -> SvcctlRequest {
    let mut r = NdrReader::new(stub, big_endian, syntax);
    let mut handle = None;
    if first_param_is_handle(opnum) {
        handle = r.context_handle();
        if handle.is_none() {
            return SvcctlRequest {
                handle,
                call: SvcctlCall::Other,
            };
        }
    }
    SvcctlRequest {
        handle,
        call: call(opnum, &mut r),
    }
}

/// Character width of an opnum's strings: the `A` calls send 8-bit strings, the rest UTF-16.
fn unit(opnum: u16) -> usize {
    match opnum {
        OP_CHANGE_SERVICE_CONFIG_A
        | OP_CREATE_SERVICE_A
        | OP_OPEN_SC_MANAGER_A
        | OP_OPEN_SERVICE_A
        | OP_START_SERVICE_A
        | OP_CREATE_SERVICE_WOW64_A => 1,
        _ => 2,
    }
}

fn call(opnum: u16, r: &mut NdrReader<'_>) -> SvcctlCall {
    let unit = unit(opnum);
    match opnum {
        OP_OPEN_SC_MANAGER_W | OP_OPEN_SC_MANAGER_A | OP_OPEN_SC_MANAGER_2 => {
            let (mut machine_name, mut database, mut access) = (None, None, None);
            let _ = (|| -> Option<()> {
                if opnum != OP_OPEN_SC_MANAGER_2 {
                    machine_name = r.unique_string(unit)?;
                }
                database = r.unique_string(unit)?;
                access = Some(r.u32()?);
                Some(())
            })();
            SvcctlCall::OpenScManager {
                machine_name,
                database,
                access,
            }
        }
        _ if is_create(opnum) => {
            let mut c = ServiceConfig::default();
            let _ = create_service(r, unit, &mut c);
            SvcctlCall::CreateService(c)
        }
        _ if is_modify(opnum) => {
            let mut c = ServiceConfig::default();
            let _ = change_service_config(r, unit, &mut c);
            SvcctlCall::ChangeServiceConfig(c)
        }
        OP_OPEN_SERVICE_W | OP_OPEN_SERVICE_A => {
            let service_name = r.varying_string(unit);
            let access = service_name.as_ref().and_then(|_| r.u32());
            SvcctlCall::OpenService {
                service_name,
                access,
            }
        }
        OP_START_SERVICE_W | OP_START_SERVICE_A => {
            let argc = r.u32();
            let arguments = argc.and_then(|_| r.unique_string_array(unit, MAX_SERVICE_ARGS));
            SvcctlCall::StartService {
                argc,
                arguments: arguments.flatten().filter(|v| !v.is_empty()),
            }
        }
        OP_CONTROL_SERVICE => SvcctlCall::ControlService { control: r.u32() },
        _ => SvcctlCall::Other,
    }
}

fn create_service(r: &mut NdrReader<'_>, unit: usize, c: &mut ServiceConfig) -> Option<()> {
    c.service_name = Some(r.varying_string(unit)?);
    c.display_name = r.unique_string(unit)?;
    c.access = Some(r.u32()?);
    c.service_type = Some(r.u32()?);
    c.start_type = Some(r.u32()?);
    c.error_control = Some(r.u32()?);
    c.binary_path = Some(r.varying_string(unit)?);
    let _load_order_group = r.unique_string(unit)?;
    let _tag_id = r.unique_u32()?;
    let _dependencies = r.unique_byte_array()?;
    let _depend_size = r.u32()?;
    c.start_name = r.unique_string(unit)?;
    Some(())
}

fn change_service_config(r: &mut NdrReader<'_>, unit: usize, c: &mut ServiceConfig) -> Option<()> {
    c.service_type = Some(r.u32()?);
    c.start_type = Some(r.u32()?);
    c.error_control = Some(r.u32()?);
    c.binary_path = r.unique_string(unit)?;
    let _load_order_group = r.unique_string(unit)?;
    let _tag_id = r.unique_u32()?;
    let _dependencies = r.unique_byte_array()?;
    let _depend_size = r.u32()?;
    c.start_name = r.unique_string(unit)?;
    let _password = r.unique_byte_array()?;
    let _pw_size = r.u32()?;
    c.display_name = r.unique_string(unit)?;
    Some(())
}

/// Decodes a response stub: the return code (the stub's last four bytes) and the handle returned
/// by the opening and creating calls.
pub fn parse_response(opnum: u16, stub: &[u8], big_endian: bool, syntax: Syntax) -> SvcctlResponse {
    let mut r = NdrReader::new(stub, big_endian, syntax);
    let handle = match opnum {
        OP_OPEN_SC_MANAGER_W | OP_OPEN_SC_MANAGER_A | OP_OPEN_SC_MANAGER_2 | OP_OPEN_SERVICE_W
        | OP_OPEN_SERVICE_A => r.context_handle(),
        _ if is_create(opnum) => r.unique_u32().and_then(|_tag| r.context_handle()),
        _ => None,
    };
    SvcctlResponse {
        return_code: return_code(stub, big_endian),
        handle: handle.filter(|h| h.iter().any(|&b| b != 0)),
    }
}

/// The last four bytes of a response stub: the Win32 error / HRESULT every MS-SCMR, MS-TSCH and
/// atsvc method returns.
pub fn return_code(stub: &[u8], big_endian: bool) -> Option<u32> {
    let at = stub.len().checked_sub(4)?;
    let b: [u8; 4] = stub.get(at..)?.try_into().ok()?;
    Some(if big_endian {
        u32::from_be_bytes(b)
    } else {
        u32::from_le_bytes(b)
    })
}

#[cfg(test)]
pub(crate) mod build {
    //! NDR 2.0 stub builders for tests (little- or big-endian).
    pub struct W {
        pub v: Vec<u8>,
        pub be: bool,
        pub ndr64: bool,
    }
    impl W {
        pub fn new(be: bool) -> W {
            W {
                v: Vec::new(),
                be,
                ndr64: false,
            }
        }
        pub fn ndr64() -> W {
            W {
                v: Vec::new(),
                be: false,
                ndr64: true,
            }
        }
        pub fn align(&mut self, n: usize) {
            while self.v.len() % n != 0 {
                self.v.push(0);
            }
        }
        pub fn u32(&mut self, x: u32) -> &mut W {
            self.align(4);
            self.v.extend_from_slice(&if self.be {
                x.to_be_bytes()
            } else {
                x.to_le_bytes()
            });
            self
        }
        pub fn count(&mut self, x: u64) -> &mut W {
            if self.ndr64 {
                self.align(8);
                self.v.extend_from_slice(&x.to_le_bytes());
                self
            } else {
                self.u32(x as u32)
            }
        }
        pub fn handle(&mut self, h: &[u8; 20]) -> &mut W {
            self.align(4);
            self.v.extend_from_slice(h);
            self
        }
        pub fn wstr(&mut self, s: &str) -> &mut W {
            let units: Vec<u16> = s.encode_utf16().chain(std::iter::once(0)).collect();
            self.count(units.len() as u64)
                .count(0)
                .count(units.len() as u64);
            for u in units {
                self.v.extend_from_slice(&if self.be {
                    u.to_be_bytes()
                } else {
                    u.to_le_bytes()
                });
            }
            self
        }
        pub fn astr(&mut self, s: &str) -> &mut W {
            let n = s.len() as u64 + 1;
            self.count(n).count(0).count(n);
            self.v.extend_from_slice(s.as_bytes());
            self.v.push(0);
            self
        }
        pub fn ptr(&mut self, id: u32) -> &mut W {
            self.count(id as u64)
        }
        pub fn unique_wstr(&mut self, s: Option<&str>) -> &mut W {
            match s {
                Some(s) => self.ptr(0x0002_0000).wstr(s),
                None => self.ptr(0),
            }
        }
        pub fn unique_astr(&mut self, s: Option<&str>) -> &mut W {
            match s {
                Some(s) => self.ptr(0x0002_0000).astr(s),
                None => self.ptr(0),
            }
        }
    }

    /// An RCreateServiceW / WOW64W / CreateWowService request stub.
    pub fn create_service_w(
        w: &mut W,
        handle: &[u8; 20],
        name: &str,
        display: Option<&str>,
        path: &str,
    ) {
        w.handle(handle).wstr(name).unique_wstr(display);
        w.u32(0x000f_01ff).u32(0x10).u32(3).u32(0).wstr(path);
        w.unique_wstr(None)
            .ptr(0)
            .ptr(0)
            .u32(0)
            .unique_wstr(Some("LocalSystem"))
            .ptr(0)
            .u32(0);
    }
}

#[cfg(test)]
mod tests {
    use super::build::*;
    use super::*;
    use crate::dcerpc::interfaces::SVCCTL;
    use crate::dcerpc::stubs::{request_args, response_args};
    use crate::event::{hex, DceArgs};

    const H: [u8; 20] = [
        0, 0, 0, 0, 0xc6, 0xfa, 0xad, 0x76, 0x30, 0xa4, 0xd8, 0x48, 0xbf, 0xcb, 0xaa, 0x9d, 0x35,
        0x47, 0x59, 0x17,
    ];

    fn req(opnum: u16, stub: &[u8], be: bool, syntax: Syntax) -> DceArgs {
        let mut a = DceArgs::default();
        request_args(SVCCTL, opnum, stub, be, syntax, &mut a);
        a
    }

    #[test]
    fn typed_records() {
        let mut w = W::new(false);
        create_service_w(&mut w, &H, "svc", None, "C:\\x.exe");
        let r = parse_request(OP_CREATE_SERVICE_W, &w.v, false, Syntax::Ndr20);
        assert_eq!(r.handle, Some(H));
        let SvcctlCall::CreateService(c) = r.call else {
            panic!("{r:?}");
        };
        assert_eq!(c.service_name.as_deref(), Some("svc"));
        assert_eq!(c.binary_path.as_deref(), Some("C:\\x.exe"));
        // Cut inside the handle: nothing but the opnum's kind is known.
        let r = parse_request(OP_CREATE_SERVICE_W, &w.v[..10], false, Syntax::Ndr20);
        assert_eq!((r.handle, r.call), (None, SvcctlCall::Other));
        let mut w = W::new(false);
        w.handle(&[0; 20]).u32(5);
        assert_eq!(
            parse_response(OP_OPEN_SERVICE_W, &w.v, false, Syntax::Ndr20),
            SvcctlResponse {
                return_code: Some(5),
                handle: None
            }
        );
    }

    #[test]
    fn create_service_w_all_fields() {
        let mut w = W::new(false);
        create_service_w(
            &mut w,
            &H,
            "nUwj",
            Some("nUwj disp"),
            "%systemroot%\\zeCGSXch.exe",
        );
        let a = req(12, &w.v, false, Syntax::Ndr20);
        assert_eq!(a.handle.as_deref(), Some(hex(&H).as_str()));
        assert_eq!(a.service_name.as_deref(), Some("nUwj"));
        assert_eq!(a.display_name.as_deref(), Some("nUwj disp"));
        assert_eq!(a.binary_path.as_deref(), Some("%systemroot%\\zeCGSXch.exe"));
        assert_eq!(
            (a.access, a.service_type, a.start_type, a.error_control),
            (Some(0xf01ff), Some(0x10), Some(3), Some(0))
        );
        assert_eq!(a.start_name.as_deref(), Some("LocalSystem"));
        // Same layout for the WOW64 and CreateWowService opnums.
        assert_eq!(
            req(45, &w.v, false, Syntax::Ndr20).binary_path,
            a.binary_path
        );
        assert_eq!(
            req(60, &w.v, false, Syntax::Ndr20).service_name,
            a.service_name
        );
    }

    #[test]
    fn create_service_w_big_endian_and_ndr64() {
        let mut w = W::new(true);
        create_service_w(&mut w, &H, "BigSvc", None, "C:\\be.exe");
        let a = req(12, &w.v, true, Syntax::Ndr20);
        assert_eq!(a.service_name.as_deref(), Some("BigSvc"));
        assert_eq!(a.binary_path.as_deref(), Some("C:\\be.exe"));
        assert_eq!(a.start_type, Some(3));
        let mut w = W::ndr64();
        create_service_w(&mut w, &H, "Svc64", Some("D"), "C:\\64.exe");
        let a = req(45, &w.v, false, Syntax::Ndr64);
        assert_eq!(a.service_name.as_deref(), Some("Svc64"));
        assert_eq!(a.display_name.as_deref(), Some("D"));
        assert_eq!(a.binary_path.as_deref(), Some("C:\\64.exe"));
        assert_eq!(a.start_name.as_deref(), Some("LocalSystem"));
        // Decoding NDR64 bytes as NDR 2.0 must not invent the path.
        assert_ne!(
            req(45, &w.v, false, Syntax::Ndr20).binary_path.as_deref(),
            Some("C:\\64.exe")
        );
    }

    #[test]
    fn create_service_a_uses_ansi() {
        let mut w = W::new(false);
        w.handle(&H)
            .astr("AnsiSvc")
            .unique_astr(Some("Ansi display"));
        w.u32(0xf01ff)
            .u32(0x10)
            .u32(2)
            .u32(1)
            .astr("cmd.exe /c calc");
        w.unique_astr(None)
            .ptr(0)
            .ptr(0)
            .u32(0)
            .unique_astr(None)
            .ptr(0)
            .u32(0);
        for op in [24, 44] {
            let a = req(op, &w.v, false, Syntax::Ndr20);
            assert_eq!(a.service_name.as_deref(), Some("AnsiSvc"));
            assert_eq!(a.display_name.as_deref(), Some("Ansi display"));
            assert_eq!(a.binary_path.as_deref(), Some("cmd.exe /c calc"));
            assert_eq!(
                (a.start_type, a.error_control, a.start_name.as_deref()),
                (Some(2), Some(1), None)
            );
        }
    }

    #[test]
    fn truncated_create_keeps_what_parsed() {
        let mut w = W::new(false);
        create_service_w(&mut w, &H, "nUwj", None, "%systemroot%\\x.exe");
        let a = req(12, &w.v[..46], false, Syntax::Ndr20);
        assert_eq!(a.service_name.as_deref(), Some("nUwj"));
        assert_eq!(a.binary_path, None);
        for n in 0..w.v.len() {
            let _ = req(12, &w.v[..n], false, Syntax::Ndr20);
        }
    }

    #[test]
    fn open_sc_manager_w_a_and_2() {
        let mut w = W::new(false);
        w.unique_wstr(Some("DUMMY"))
            .unique_wstr(Some("ServicesActive"))
            .u32(0xf003f);
        let a = req(15, &w.v, false, Syntax::Ndr20);
        assert_eq!(
            (a.machine_name.as_deref(), a.database.as_deref(), a.access),
            (Some("DUMMY"), Some("ServicesActive"), Some(0xf003f))
        );
        assert_eq!(a.handle, None);
        let mut w = W::new(false);
        w.unique_astr(None)
            .unique_astr(Some("ServicesActive"))
            .u32(4);
        let a = req(27, &w.v, false, Syntax::Ndr20);
        assert_eq!(
            (a.machine_name, a.database.as_deref(), a.access),
            (None, Some("ServicesActive"), Some(4))
        );
        let mut w = W::new(false);
        w.unique_wstr(Some("ServicesActive")).u32(0xf003f);
        let a = req(64, &w.v, false, Syntax::Ndr20);
        assert_eq!(
            (a.database.as_deref(), a.access),
            (Some("ServicesActive"), Some(0xf003f))
        );
    }

    #[test]
    fn change_config_open_start_control_delete() {
        let mut w = W::new(false);
        w.handle(&H)
            .u32(0xffff_ffff)
            .u32(2)
            .u32(0xffff_ffff)
            .unique_wstr(Some("C:\\evil.exe"));
        w.unique_wstr(None)
            .ptr(0)
            .ptr(0)
            .u32(0)
            .unique_wstr(None)
            .ptr(0)
            .u32(0)
            .unique_wstr(Some("New name"));
        let a = req(11, &w.v, false, Syntax::Ndr20);
        assert_eq!(
            (
                a.binary_path.as_deref(),
                a.start_type,
                a.display_name.as_deref()
            ),
            (Some("C:\\evil.exe"), Some(2), Some("New name"))
        );
        assert_eq!(a.service_type, Some(0xffff_ffff));

        let mut w = W::new(false);
        w.handle(&H).wstr("PSEXESVC").u32(0xf01ff);
        assert_eq!(
            req(16, &w.v, false, Syntax::Ndr20).service_name.as_deref(),
            Some("PSEXESVC")
        );

        let mut w = W::new(false);
        w.handle(&H)
            .u32(2)
            .ptr(0x20000)
            .count(2)
            .ptr(0x20004)
            .ptr(0x20008)
            .wstr("-a")
            .wstr("b c");
        let a = req(19, &w.v, false, Syntax::Ndr20);
        assert_eq!(a.argc, Some(2));
        assert_eq!(a.arguments, Some(vec!["-a".to_string(), "b c".to_string()]));
        let mut w = W::new(false);
        w.handle(&H).u32(0).ptr(0);
        let a = req(31, &w.v, false, Syntax::Ndr20);
        assert_eq!((a.argc, a.arguments), (Some(0), None));

        let mut w = W::new(false);
        w.handle(&H).u32(1);
        let a = req(1, &w.v, false, Syntax::Ndr20);
        assert_eq!(
            (a.control, a.handle.as_deref()),
            (Some(1), Some(hex(&H).as_str()))
        );
        let mut w = W::new(false);
        w.handle(&H);
        assert_eq!(
            req(2, &w.v, false, Syntax::Ndr20).handle.as_deref(),
            Some(hex(&H).as_str())
        );
    }

    #[test]
    fn responses_handles_and_return_codes() {
        let mut w = W::new(false);
        w.handle(&H).u32(0);
        let mut a = DceArgs::default();
        response_args(SVCCTL, 15, &w.v, false, Syntax::Ndr20, &mut a);
        assert_eq!(
            (a.response_handle.as_deref(), a.return_code),
            (Some(hex(&H).as_str()), Some(0))
        );

        let mut w = W::new(false);
        w.ptr(0).handle(&H).u32(0);
        let mut a = DceArgs::default();
        response_args(SVCCTL, 12, &w.v, false, Syntax::Ndr20, &mut a);
        assert_eq!(a.response_handle.as_deref(), Some(hex(&H).as_str()));

        let mut w = W::new(false);
        w.handle(&[0; 20]).u32(1060); // ERROR_SERVICE_DOES_NOT_EXIST
        let mut a = DceArgs::default();
        response_args(SVCCTL, 16, &w.v, false, Syntax::Ndr20, &mut a);
        assert_eq!((a.response_handle, a.return_code), (None, Some(1060)));

        let mut a = DceArgs::default();
        response_args(SVCCTL, 19, &[0, 0, 0, 5], true, Syntax::Ndr20, &mut a);
        assert_eq!(a.return_code, Some(5));
    }
}
