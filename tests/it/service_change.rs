//! What a service change means: RChangeServiceConfigW (MS-SCMR 3.1.4.11) that only changes the
//! start type (`sc config X start= disabled`) is administration, a `service-control` signal with
//! the changed fields; one that sets a binary path is the technique (`service-modify`). The
//! request stubs are built by NDR from the MS-SCMR layout and decoded by the sensor's svcctl
//! decoder, then run through detection after OpenSCManager / OpenService.

use crate::detect_util::*;
use psexec_sensor::dcerpc::interfaces::SVCCTL;
use psexec_sensor::dcerpc::ndr::Syntax;
use psexec_sensor::dcerpc::stubs::request_args;
use psexec_sensor::dcerpc::svcctl::OP_CHANGE_SERVICE_CONFIG_W;
use psexec_sensor::event::alert::Technique;
use psexec_sensor::event::DceArgs;

const SERVICE_NO_CHANGE: u32 = 0xffff_ffff;
const SERVICE_DISABLED: u32 = 4;
const SERVICE_WIN32_OWN_PROCESS: u32 = 0x10;

/// NDR20 little-endian writer for the pieces the stub needs.
#[derive(Default)]
struct Ndr {
    b: Vec<u8>,
    referent: u32,
}

impl Ndr {
    fn u32(&mut self, v: u32) {
        while self.b.len() % 4 != 0 {
            self.b.push(0);
        }
        self.b.extend_from_slice(&v.to_le_bytes());
    }
    fn null(&mut self) {
        self.u32(0);
    }
    /// `[string, unique] wchar_t*`: referent, max count, offset, actual count, UTF-16 with NUL.
    fn unique_wstring(&mut self, s: &str) {
        self.referent += 4;
        self.u32(0x0002_0000 + self.referent);
        let units: Vec<u16> = s.encode_utf16().chain([0]).collect();
        self.u32(units.len() as u32);
        self.u32(0);
        self.u32(units.len() as u32);
        for u in units {
            self.b.extend_from_slice(&u.to_le_bytes());
        }
    }
}

/// RChangeServiceConfigW request stub: hService, dwServiceType, dwStartType, dwErrorControl,
/// lpBinaryPathName, lpLoadOrderGroup, lpdwTagId, lpDependencies, dwDependSize,
/// lpServiceStartName, lpPassword, dwPwSize, lpDisplayName.
fn change_config_w(service_type: u32, start_type: u32, binary_path: Option<&str>) -> Vec<u8> {
    let mut n = Ndr::default();
    n.b.extend_from_slice(&[0u8; 4]);
    n.b.extend_from_slice(&[0x11; 16]);
    n.u32(service_type);
    n.u32(start_type);
    n.u32(SERVICE_NO_CHANGE);
    match binary_path {
        Some(p) => n.unique_wstring(p),
        None => n.null(),
    }
    n.null(); // load order group
    n.null(); // tag id
    n.null(); // dependencies
    n.u32(0);
    n.null(); // start name
    n.null(); // password
    n.u32(0);
    n.null(); // display name
    n.b
}

fn decoded(stub: &[u8]) -> DceArgs {
    let mut a = DceArgs::default();
    request_args(
        SVCCTL,
        OP_CHANGE_SERVICE_CONFIG_W,
        stub,
        false,
        Syntax::Ndr20,
        &mut a,
    );
    a.handle = Some("svc-h".into());
    a.return_code = Some(0);
    a
}

fn run_change(args: DceArgs) -> Vec<psexec_sensor::event::alert::Alert> {
    let mut s = Seq::new(ATT, VIC);
    s.auth(0.0, "admin", "LAB")
        .pipe(0.5, "svcctl")
        .open_scm(1.0, "DUMMY")
        .open_service(1.1, "Spooler", "svc-h", 0)
        .svc(
            1.2,
            OP_CHANGE_SERVICE_CONFIG_W,
            "ChangeServiceConfigW",
            args,
            "ok",
        );
    run(&s.done())
}

#[test]
fn start_type_only_change_is_a_service_control_signal_not_the_technique() {
    let a = decoded(&change_config_w(SERVICE_NO_CHANGE, SERVICE_DISABLED, None));
    assert_eq!(
        a.start_type,
        Some(SERVICE_DISABLED),
        "decoder read the stub"
    );
    assert_eq!(a.binary_path, None);
    let alerts = run_change(a);
    assert!(techniques(&alerts).is_empty(), "no technique alert");
    let sig = signals(&alerts);
    let control: Vec<_> = sig
        .iter()
        .filter(|s| s.signal == "service-control")
        .collect();
    assert_eq!(control.len(), 1, "{sig:?}");
    assert_eq!(control[0].service_name.as_deref(), Some("Spooler"));
    assert_eq!(control[0].changes, vec!["start_type=disabled".to_string()]);
    assert!(control[0].reason.contains("without a new binary path"));
}

#[test]
fn binary_path_change_is_the_technique() {
    let path = "C:\\Windows\\Temp\\evil.exe";
    let a = decoded(&change_config_w(
        SERVICE_WIN32_OWN_PROCESS,
        SERVICE_NO_CHANGE,
        Some(path),
    ));
    assert_eq!(
        a.binary_path.as_deref(),
        Some(path),
        "decoder read the stub"
    );
    let alerts = run_change(a);
    let t = one(&alerts);
    assert_eq!(t.technique, Technique::ServiceModify);
    assert_eq!(t.service_name.as_deref(), Some("Spooler"));
    assert_eq!(t.binary_path.as_deref(), Some(path));
    assert!(!t.failed);
}

#[test]
fn an_unreadable_change_still_counts_as_the_technique() {
    // Packet privacy hides the fields: the change may carry a binary path.
    let mut s = Seq::new(ATT, VIC);
    s.call_on(
        1.0,
        "tcp",
        "svcctl",
        OP_CHANGE_SERVICE_CONFIG_W,
        "ChangeServiceConfigW",
        DceArgs::default(),
        "ok",
        true,
    );
    let alerts = run(&s.done());
    assert_eq!(one(&alerts).technique, Technique::ServiceModify);
}
