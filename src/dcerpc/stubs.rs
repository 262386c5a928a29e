//! Stub decoding routed by interface, and the one place where the stub decoders' typed records
//! (svcctl, task scheduler, atsvc) become the output schema's `dce_rpc` arguments ([`DceArgs`]).

use super::ndr::Syntax;
use super::svcctl::{ServiceConfig, SvcctlCall, SvcctlRequest, SvcctlResponse};
use super::tasks::{JobAdd, TaskDefinition, TschRequest, TschResponse};
use super::{epm, interfaces, svcctl, tasks};
use crate::event::{hex, DceArgs};

/// Decodes a request stub of interface `uuid` into `args`.
pub fn request_args(
    uuid: &str,
    opnum: u16,
    stub: &[u8],
    be: bool,
    syntax: Syntax,
    args: &mut DceArgs,
) {
    match uuid {
        interfaces::SVCCTL => svcctl_request(svcctl::parse_request(opnum, stub, be, syntax), args),
        interfaces::ITASKSCHEDULERSERVICE => {
            tsch_request(tasks::parse_tsch_request(opnum, stub, be, syntax), args)
        }
        interfaces::ATSVC => {
            if let Some(job) = tasks::parse_atsvc_request(opnum, stub, be, syntax) {
                job_add(job, args);
            }
        }
        interfaces::EPMAPPER if opnum == epm::OP_EPT_MAP => {
            epm::decode_map_request(stub, be, syntax, args)
        }
        _ => {}
    }
}

/// Decodes a response stub of interface `uuid` into `args` (which hold the request's already).
pub fn response_args(
    uuid: &str,
    opnum: u16,
    stub: &[u8],
    be: bool,
    syntax: Syntax,
    args: &mut DceArgs,
) {
    match uuid {
        interfaces::SVCCTL => {
            svcctl_response(svcctl::parse_response(opnum, stub, be, syntax), args)
        }
        interfaces::ITASKSCHEDULERSERVICE => {
            tsch_response(tasks::parse_tsch_response(opnum, stub, be, syntax), args)
        }
        interfaces::ATSVC => args.return_code = svcctl::return_code(stub, be),
        interfaces::EPMAPPER if opnum == epm::OP_EPT_MAP => {
            let _ = epm::decode_map_response(stub, be, syntax, args);
        }
        _ => {}
    }
}

fn svcctl_request(req: SvcctlRequest, a: &mut DceArgs) {
    a.handle = req.handle.map(|h| hex(&h));
    match req.call {
        SvcctlCall::OpenScManager {
            machine_name,
            database,
            access,
        } => {
            a.machine_name = machine_name;
            a.database = database;
            a.access = access;
        }
        SvcctlCall::CreateService(c) | SvcctlCall::ChangeServiceConfig(c) => service_config(c, a),
        SvcctlCall::OpenService {
            service_name,
            access,
        } => {
            a.service_name = service_name;
            a.access = access;
        }
        SvcctlCall::StartService { argc, arguments } => {
            a.argc = argc;
            a.arguments = arguments;
        }
        SvcctlCall::ControlService { control } => a.control = control,
        SvcctlCall::Other => {}
    }
}

fn service_config(c: ServiceConfig, a: &mut DceArgs) {
    a.service_name = c.service_name;
    a.display_name = c.display_name;
    a.access = c.access;
    a.service_type = c.service_type;
    a.start_type = c.start_type;
    a.error_control = c.error_control;
    a.binary_path = c.binary_path;
    a.start_name = c.start_name;
}

fn svcctl_response(resp: SvcctlResponse, a: &mut DceArgs) {
    a.return_code = resp.return_code;
    if let Some(h) = resp.handle {
        a.response_handle = Some(hex(&h));
    }
}

fn tsch_request(req: TschRequest, a: &mut DceArgs) {
    match req {
        TschRequest::RegisterTask {
            task_path,
            definition,
        } => {
            a.task_path = task_path;
            if let Some(d) = definition {
                task_definition(d, a);
            }
        }
        TschRequest::Run {
            task_path,
            argc,
            arguments,
        } => {
            a.task_path = task_path;
            a.argc = argc;
            a.arguments = arguments;
        }
        TschRequest::OnTask { task_path } => a.task_path = task_path,
        TschRequest::Other => {}
    }
}

/// The task definition's fields (also used for XML found outside a stub).
pub fn task_definition(d: TaskDefinition, a: &mut DceArgs) {
    a.command = d.command;
    a.command_arguments = d.command_arguments;
    a.user_id = d.user_id;
    a.run_level = d.run_level;
}

fn tsch_response(resp: TschResponse, a: &mut DceArgs) {
    a.return_code = resp.return_code;
    // The request's path wins; a registration that let the server choose learns it here.
    if a.task_path.is_none() {
        a.task_path = resp.registered_path;
    }
}

fn job_add(job: JobAdd, a: &mut DceArgs) {
    a.machine_name = job.machine_name;
    a.command = job.command;
}
