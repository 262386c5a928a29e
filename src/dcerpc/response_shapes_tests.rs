//! Response shapes on the bytes of real captures (tshark `tcp.payload`, the DCE-RPC PDU at its
//! end): Samba's svcctl answers to impacket (lab a), Windows' ntsvcs answers to Sysinternals
//! PsExec (401trg psexec_add_user), Windows' atsvc answer to `at` (401trg at_schedule) and its
//! ITaskSchedulerService answers to impacket atexec (elcabezzonn atexec_).

use super::*;
use crate::dcerpc::pdu;
use crate::smb::crypto::testutil::hex;
use crate::wire::parsed;

/// The stub of one response PDU, or None for a fault.
fn stub(pdu_hex: &str) -> Option<Vec<u8>> {
    let b = hex(pdu_hex);
    let h = parsed(pdu::parse_header(&b)).expect("header");
    let (body, _) = pdu::split_auth(&b, &h).expect("body");
    match h.ptype {
        pdu::PTYPE_RESPONSE => Some(parsed(pdu::parse_response(body, &h)).unwrap().stub.to_vec()),
        pdu::PTYPE_FAULT => None,
        t => panic!("ptype {t}"),
    }
}

/// Feeds responses through the shapes and the sequence, as the association does.
fn infer(endpoint: Endpoint, pdus: &[&str]) -> Vec<InferredOp> {
    let mut seq = ScmSequence::default();
    pdus.iter()
        .map(|p| {
            let shape = stub(p).map(|s| classify(endpoint, &s, false));
            seq.next(endpoint, shape.as_ref())
        })
        .collect()
}

#[test]
fn secondary_addresses_name_the_endpoints() {
    assert_eq!(Endpoint::of_sec_addr("\\pipe\\svcctl"), Endpoint::Scm);
    assert_eq!(Endpoint::of_sec_addr("\\PIPE\\ntsvcs\0"), Endpoint::Scm);
    assert_eq!(
        Endpoint::of_sec_addr("\\PIPE\\atsvc"),
        Endpoint::TaskScheduler
    );
    assert_eq!(Endpoint::of_sec_addr("\\pipe\\srvsvc"), Endpoint::Other);
    assert_eq!(Endpoint::of_sec_addr("49155"), Endpoint::Other);
    assert_eq!(Endpoint::of_sec_addr("svcctl"), Endpoint::Other);
    assert_eq!(Endpoint::of_sec_addr(""), Endpoint::Other);
}

/// Samba (lab a): OpenSCManagerW → handle; OpenServiceW of a missing service → zeroed handle,
/// ERROR_SERVICE_DOES_NOT_EXIST; CreateServiceW → fault nca_s_op_rng_error (not implemented).
const SAMBA_OPEN_SCM: &str = "05000203100000003000000001000000180000000000000000000000c6faad7630a4d848bfcbaa9d3547591700000000";
const SAMBA_OPEN_SERVICE_MISSING: &str = "050002031000000030000000020000001800000000000000000000000000000000000000000000000000000024040000";
const SAMBA_FAULT: &str = "0500030310000000200000000300000018000000000000000200011c00000000";

#[test]
fn samba_refuses_the_create_after_the_scm_opened() {
    let s = stub(SAMBA_OPEN_SERVICE_MISSING).unwrap();
    assert_eq!(
        classify(Endpoint::Scm, &s, false),
        Shape::Handle {
            zero: true,
            status: 1060
        }
    );
    assert_eq!(
        infer(
            Endpoint::Scm,
            &[SAMBA_OPEN_SCM, SAMBA_OPEN_SERVICE_MISSING, SAMBA_FAULT]
        ),
        [
            InferredOp::OpenScManager,
            InferredOp::OpenService,
            InferredOp::Refused
        ]
    );
    // A fault before any handle says nothing about the SCM.
    assert_eq!(infer(Endpoint::Scm, &[SAMBA_FAULT]), [InferredOp::Unknown]);
    // The same layouts on another endpoint are not read as SCM calls.
    assert_eq!(
        infer(Endpoint::Other, &[SAMBA_OPEN_SCM, SAMBA_FAULT]),
        [InferredOp::Unknown, InferredOp::Unknown]
    );
}

/// Windows (401trg psexec_add_user), Sysinternals PsExec over \PIPE\ntsvcs, calls 2–7 and 9:
/// OpenSCManager, CreateService, close, OpenService, StartService, QueryServiceStatus, close.
const WIN_PSEXEC: [&str; 7] = [
    "05000203100000003000000002000000180000000000000000000000c255930e0aaf2c45910fe56e9bc0f91500000000",
    "050002031000000034000000030000001c000000000000000000000000000000bd51a120f02e5845a493650a0ffb75be00000000",
    "050002031000000030000000040000001800000000000000000000000000000000000000000000000000000000000000",
    "05000203100000003000000005000000180000000000000000000000213450fffb53144dae6a438660f607d400000000",
    "05000203100000001c00000006000000040000000000000000000000",
    "050002031000000038000000070000002000000000000000100000000200000000000000000000000000000001000000b80b000000000000",
    "050002031000000030000000090000001800000000000000000000000000000000000000000000000000000000000000",
];

#[test]
fn windows_psexec_create_and_start_are_read_from_the_answers() {
    let s = stub(WIN_PSEXEC[1]).unwrap();
    assert_eq!(s.len(), 28);
    assert_eq!(
        classify(Endpoint::Scm, &s, false),
        Shape::Create {
            handle: true,
            status: 0
        }
    );
    let s = stub(WIN_PSEXEC[5]).unwrap();
    assert_eq!(
        classify(Endpoint::Scm, &s, false),
        Shape::ServiceStatus {
            state: 2,
            status: 0
        }
    );
    assert_eq!(
        infer(Endpoint::Scm, &WIN_PSEXEC),
        [
            InferredOp::OpenScManager,
            InferredOp::CreateService,
            InferredOp::CloseHandle,
            InferredOp::OpenService,
            InferredOp::StartOrDelete,
            InferredOp::ServiceStatus,
            InferredOp::CloseHandle,
        ]
    );
}

#[test]
fn a_failed_create_and_a_tagged_create() {
    // ERROR_SERVICE_EXISTS: null tag, zeroed handle, 1073.
    let mut s = vec![0u8; 24];
    s.extend(1073u32.to_le_bytes());
    assert_eq!(
        classify(Endpoint::Scm, &s, false),
        Shape::Create {
            handle: false,
            status: 1073
        }
    );
    // A tag referent and tag 3, a handle, success (big-endian data representation).
    let mut s = vec![0, 2, 0, 0, 0, 0, 0, 3];
    s.extend([0, 0, 0, 0]);
    s.extend([0xab; 16]);
    s.extend([0, 0, 0, 0]);
    assert_eq!(
        classify(Endpoint::Scm, &s, true),
        Shape::Create {
            handle: true,
            status: 0
        }
    );
    // Truncated or odd layouts are `Other`, never a panic.
    for n in 0..40 {
        let _ = classify(Endpoint::Scm, &vec![0x11; n], false);
        let _ = classify(Endpoint::TaskScheduler, &vec![0x5c; n], true);
    }
}

#[test]
fn at_job_add_is_a_job_id_on_the_atsvc_pipe() {
    // 401trg at_schedule: job id 2, NERR_Success.
    let s = stub("0500020310000000200000000200000008000000010000000200000000000000").unwrap();
    let shape = classify(Endpoint::TaskScheduler, &s, false);
    assert_eq!(shape, Shape::JobId { job: 2, status: 0 });
    assert_eq!(
        ScmSequence::default().next(Endpoint::TaskScheduler, Some(&shape)),
        InferredOp::JobAdd
    );
    // SchRpcHighestVersion's 0x00010004 is a version, not a job.
    let v = [4u8, 0, 1, 0, 0, 0, 0, 0];
    assert_eq!(
        classify(Endpoint::TaskScheduler, &v, false),
        Shape::Version(0x0001_0004)
    );
}

#[test]
fn atexec_register_task_answers_with_the_task_path() {
    let s = stub("050002031000000044000000020000002c00000000000000000002000a000000000000000a0000005c006e005a0066005200550042007400730000000000000000000000").unwrap();
    let shape = classify(Endpoint::TaskScheduler, &s, false);
    assert_eq!(
        shape,
        Shape::TaskPath {
            path: "\\nZfRUBts".into(),
            status: 0
        }
    );
    let run = stub(
        "05000203100000002c000000030000001400000000000000a7551560241b8a4faced23d0e116386700000000",
    )
    .unwrap();
    let mut seq = ScmSequence::default();
    assert_eq!(
        seq.next(Endpoint::TaskScheduler, Some(&shape)),
        InferredOp::RegisterTask
    );
    let run = classify(Endpoint::TaskScheduler, &run, false);
    assert_eq!(run, Shape::Guid { status: 0 });
    assert_eq!(
        seq.next(Endpoint::TaskScheduler, Some(&run)),
        InferredOp::RunTask
    );
    // SchRpcGetLastRunInfo (SYSTEMTIME + code + HRESULT) is neither.
    let last = stub("050002031000000030000000040000001800000000000000e307060000001000100028001800aa002513040000000000").unwrap();
    assert!(matches!(
        classify(Endpoint::TaskScheduler, &last, false),
        Shape::Other { .. }
    ));
}

/// Sealed answers by their sizes, in order ([`Shape::Sealed`]).
fn sealed(sizes: &[usize]) -> Vec<InferredOp> {
    let mut seq = ScmSequence::default();
    sizes
        .iter()
        .map(|&len| seq.next(Endpoint::Scm, Some(&Shape::Sealed { len })))
        .collect()
}

#[test]
fn the_endpoint_mapper_and_learned_interfaces_name_endpoints() {
    assert_eq!(Endpoint::of_sec_addr("135"), Endpoint::EndpointMapper);
    assert_eq!(
        Endpoint::of_sec_addr("\\PIPE\\epmapper"),
        Endpoint::EndpointMapper
    );
    assert_eq!(Endpoint::of_sec_addr("49688"), Endpoint::Other);
    assert_eq!(Endpoint::of_interface(interfaces::SVCCTL), Endpoint::Scm);
    for tasks in [interfaces::ATSVC, interfaces::ITASKSCHEDULERSERVICE] {
        assert_eq!(Endpoint::of_interface(tasks), Endpoint::TaskScheduler);
    }
    assert_eq!(Endpoint::of_interface(interfaces::LSARPC), Endpoint::Other);
}

#[test]
fn sealed_scm_answers_are_read_by_size_and_order() {
    use InferredOp::*;
    // PsExec over TCP under packet privacy (suricata-verify dcerpc-dce-iface-01, the sizes pdu's
    // tests read from its frames; pcap-attack LM_psexec answers the same): OpenSCManager, CreateServiceWOW64W, Close, OpenService, Start,
    // QueryServiceStatus.
    assert_eq!(
        sealed(&[24, 28, 24, 24, 4, 32]),
        [
            OpenScManager,
            CreateService,
            OpenOrCloseHandle,
            OpenOrCloseHandle,
            StartOrDelete,
            ServiceStatus
        ]
    );
    // SharpNoPSExec (elcabezzonn sharp-no-psexec): open, QueryServiceConfigW twice (44 bytes,
    // then the config), ChangeServiceConfigW, StartServiceA, ChangeServiceConfigW.
    assert_eq!(
        sealed(&[24, 24, 44, 480, 8, 4, 8]),
        [
            OpenScManager,
            OpenOrCloseHandle,
            Unknown,
            Unknown,
            ChangeServiceConfig,
            StartOrDelete,
            ChangeServiceConfig
        ]
    );
    // Nothing before the SCM's handle, and no change before a service handle.
    assert_eq!(sealed(&[28, 8, 4]), [Unknown, Unknown, Unknown]);
    assert_eq!(sealed(&[24, 8]), [OpenScManager, Unknown]);
    // After a query (services.msc enumerates first), 28 bytes is RQueryServiceConfig2W's size too.
    assert_eq!(
        sealed(&[24, 1200, 24, 28]),
        [OpenScManager, Unknown, OpenOrCloseHandle, Unknown]
    );
    // A 32-byte answer is a SERVICE_STATUS, never a tagged create.
    assert_eq!(sealed(&[24, 32]), [OpenScManager, Unknown]);
}
