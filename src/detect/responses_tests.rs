//! Response-only inference on hand-made event sequences: which inferred calls raise an instance,
//! when an upload belongs to it, and what `failed` means.

use super::*;
use crate::event::{ConnFields, CreateAction, DceArgs};
use crate::flow::{ConnId, Uid};

const SRC: &str = "192.0.2.10";
const DST: &str = "192.0.2.20";

fn conn(secs: u64) -> ConnFields {
    let c = ConnId {
        orig_h: SRC.parse().unwrap(),
        orig_p: 50000,
        resp_h: DST.parse().unwrap(),
        resp_p: 445,
    };
    ConnFields::new(Ts(secs * 1_000_000_000), Uid(7), &c)
}

fn call(secs: u64, pipe: &str, op: InferredOp, status: &str, rc: Option<u32>) -> Event {
    let endpoint = match (op, pipe) {
        (InferredOp::RegisterTask, _) => "ITaskSchedulerService",
        (_, "\\PIPE\\atsvc") => "atsvc",
        _ => "svcctl",
    };
    Event::DceRpc(Box::new(DceRpc {
        conn: conn(secs),
        rtt: None,
        named_pipe: Some(pipe.into()),
        endpoint: endpoint.into(),
        operation: op.operation().into(),
        transport: crate::dcerpc::Transport::SmbPipe,
        opnum: None,
        call_id: 1,
        ctx_id: Some(0),
        uuid: None,
        auth_type: None,
        auth_level: None,
        stub_encrypted: false,
        decrypted: false,
        status: status.into(),
        request_stub_len: None,
        request_frags: None,
        interfaces: None,
        inferred_operation: Some(op),
        principal: Default::default(),
        args: DceArgs {
            return_code: rc,
            ..DceArgs::default()
        },
    }))
}

fn file(secs: u64, action: FileAction, created: Option<CreateAction>, bytes: u64) -> Event {
    Event::SmbFiles(SmbFiles {
        conn: conn(secs),
        fuid: Some("00aa".into()),
        action: Some(action),
        name: UNKNOWN.into(),
        share: UNKNOWN.into(),
        create_action: created,
        bytes_written: (bytes > 0).then_some(bytes),
        first_write_ts: (bytes > 0).then_some(Ts(secs * 1_000_000_000)),
        ..SmbFiles::default()
    })
}

fn infer(events: &[Event]) -> Vec<InferredCall> {
    let mut r = ResponseInference::new(600);
    let mut out = vec![];
    for e in events {
        r.on_event(e, &mut out);
    }
    out
}

const SCM: &str = "\\pipe\\ntsvcs";

#[test]
fn a_created_service_after_a_new_file_is_a_medium_instance() {
    let out = infer(&[
        file(1, FileAction::FileOpen, Some(CreateAction::Created), 0),
        file(2, FileAction::FileWrite, None, 145_568),
        call(3, SCM, InferredOp::OpenScManager, "ok", Some(0)),
        call(4, SCM, InferredOp::CreateService, "ok", Some(0)),
        call(5, SCM, InferredOp::StartOrDelete, "ok", Some(0)),
    ]);
    assert_eq!(out.len(), 1, "one instance: the start raises nothing");
    let x = &out[0];
    assert_eq!(
        (x.technique, x.interface),
        (Technique::ServiceCreate, "svcctl")
    );
    assert_eq!(
        (x.basis, x.failed, x.medium),
        (Basis::Responses, false, true)
    );
    assert_eq!(x.upload_size, Some(145_568));
    assert_eq!(x.pipes, [SCM]);
    assert!(x.reason.contains("inferred from server responses only"));
}

#[test]
fn an_existing_file_or_an_old_upload_is_no_upload() {
    // Opened (not created): the file existed, writes to it are no upload.
    let out = infer(&[
        file(1, FileAction::FileOpen, Some(CreateAction::Opened), 0),
        file(2, FileAction::FileWrite, None, 5000),
        call(4, SCM, InferredOp::CreateService, "ok", Some(0)),
    ]);
    assert_eq!((out[0].upload_size, out[0].medium), (None, false));
    // Created, but beyond the window before the call.
    let out = infer(&[
        file(1, FileAction::FileOpen, Some(CreateAction::Created), 0),
        file(2, FileAction::FileWrite, None, 5000),
        call(900, SCM, InferredOp::CreateService, "ok", Some(0)),
    ]);
    assert_eq!(out[0].upload_size, None);
}

#[test]
fn failing_answers_say_failed_and_reads_raise_nothing() {
    let out = infer(&[
        call(1, SCM, InferredOp::OpenScManager, "ok", Some(0)),
        call(2, SCM, InferredOp::Refused, "nca_s_op_rng_error", None),
        call(3, SCM, InferredOp::CreateService, "ok", Some(1073)),
    ]);
    assert_eq!(out.len(), 2);
    assert!(out.iter().all(|x| x.failed));
    let out = infer(&[
        call(1, SCM, InferredOp::OpenScManager, "ok", Some(0)),
        call(2, SCM, InferredOp::OpenService, "ok", Some(0)),
        call(3, SCM, InferredOp::ServiceStatus, "ok", Some(0)),
        call(4, SCM, InferredOp::StartOrDelete, "ok", Some(0)),
        call(5, SCM, InferredOp::ChangeServiceConfig, "ok", Some(0)),
        call(6, SCM, InferredOp::CloseHandle, "ok", Some(0)),
    ]);
    assert!(
        out.is_empty(),
        "{:?}",
        out.iter().map(|x| &x.reason).collect::<Vec<_>>()
    );
}

#[test]
fn job_add_and_register_task_are_task_creation() {
    let at = "\\PIPE\\atsvc";
    let out = infer(&[call(1, at, InferredOp::JobAdd, "ok", Some(0))]);
    assert_eq!(
        (out[0].technique, out[0].interface),
        (Technique::TaskCreate, "atsvc")
    );
    let mut reg = call(2, at, InferredOp::RegisterTask, "ok", Some(0));
    if let Event::DceRpc(d) = &mut reg {
        d.args.task_path = Some("\\nZfRUBts".into());
    }
    let out = infer(&[reg]);
    assert_eq!(out[0].interface, "ITaskSchedulerService");
    assert_eq!(out[0].task_path.as_deref(), Some("\\nZfRUBts"));
}

/// A sealed answer on svcctl over TCP (the port the endpoint mapper named).
fn sealed(secs: u64, op: InferredOp) -> Event {
    let mut e = call(secs, "49688", op, "ok", None);
    if let Event::DceRpc(d) = &mut e {
        d.stub_encrypted = true;
        d.transport = crate::dcerpc::Transport::Tcp;
    }
    e
}

#[test]
fn sealed_answers_raise_only_a_whole_sequence() {
    use InferredOp::*;
    // Create-sized then start-sized: service-create, once.
    let out = infer(&[
        sealed(1, OpenScManager),
        sealed(2, CreateService),
        sealed(3, OpenOrCloseHandle),
        sealed(4, OpenOrCloseHandle),
        sealed(5, StartOrDelete),
        sealed(6, StartOrDelete),
    ]);
    assert_eq!(
        out.len(),
        1,
        "{:?}",
        out.iter().map(|x| &x.reason).collect::<Vec<_>>()
    );
    assert_eq!(
        (out[0].technique, out[0].basis, out[0].failed),
        (Technique::ServiceCreate, Basis::Responses, false)
    );
    assert!(out[0]
        .reason
        .starts_with("sealed svcctl answers: a create-sized answer"));
    assert_eq!(out[0].pipes, ["49688"]);
    // A create-sized answer alone is not enough.
    assert!(infer(&[sealed(1, OpenScManager), sealed(2, CreateService)]).is_empty());
    // Change, start, change (point, run, restore): service-modify.
    let out = infer(&[
        sealed(1, OpenScManager),
        sealed(2, OpenOrCloseHandle),
        sealed(3, Unknown),
        sealed(4, ChangeServiceConfig),
        sealed(5, StartOrDelete),
        sealed(6, ChangeServiceConfig),
        sealed(7, OpenOrCloseHandle),
    ]);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].technique, Technique::ServiceModify);
}

#[test]
fn sealed_admin_console_shapes_raise_nothing() {
    use InferredOp::*;
    // services.msc / sc.exe: enumerate, open, query, set a start type, start, query status,
    // close; and a start type set twice with a start between on two services (a new sequence
    // on another connection does not continue this one).
    let admin = [
        sealed(1, OpenScManager),
        sealed(2, Unknown),
        sealed(3, OpenOrCloseHandle),
        sealed(4, Unknown),
        sealed(5, ChangeServiceConfig),
        sealed(6, StartOrDelete),
        sealed(7, ServiceStatus),
        sealed(8, Unknown),
        sealed(9, ChangeServiceConfig),
        sealed(10, OpenOrCloseHandle),
    ];
    assert!(infer(&admin).is_empty());
    // The same calls cleartext-shaped are not sealed: their own rules (none raise) apply.
    let out = infer(&[
        call(1, SCM, ChangeServiceConfig, "ok", Some(0)),
        call(2, SCM, StartOrDelete, "ok", Some(0)),
        call(3, SCM, ChangeServiceConfig, "ok", Some(0)),
    ]);
    assert!(out.is_empty());
    // A sequence does not run across associations: the restore came on another connection.
    let mut other = sealed(7, ChangeServiceConfig);
    if let Event::DceRpc(d) = &mut other {
        d.conn.uid = crate::flow::Uid(8);
    }
    let out = infer(&[
        sealed(5, ChangeServiceConfig),
        sealed(6, StartOrDelete),
        other,
    ]);
    assert!(out.is_empty());
}
