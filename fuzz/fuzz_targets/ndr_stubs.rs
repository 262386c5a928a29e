//! NDR stub decoders of the interfaces the technique uses (svcctl, task scheduler, atsvc) and the
//! task XML scraper. Input: selector byte, opnum byte, stub.
#![no_main]

use libfuzzer_sys::fuzz_target;
use psexec_sensor::dcerpc::ndr::Syntax;
use psexec_sensor::dcerpc::{svcctl, tasks};

fuzz_target!(|data: &[u8]| {
    let [sel, opnum, stub @ ..] = data else {
        return;
    };
    let be = sel & 0x10 != 0;
    let syntax = if sel & 0x20 != 0 {
        Syntax::Ndr64
    } else {
        Syntax::Ndr20
    };
    let opnum = u16::from(*opnum);
    match sel & 7 {
        0 => {
            let _ = svcctl::parse_request(opnum, stub, be, syntax);
        }
        1 => {
            let _ = svcctl::parse_response(opnum, stub, be, syntax);
        }
        2 => {
            let _ = tasks::parse_tsch_request(opnum, stub, be, syntax);
        }
        3 => {
            let _ = tasks::parse_tsch_response(opnum, stub, be, syntax);
        }
        4 => {
            let _ = tasks::parse_atsvc_request(opnum, stub, be, syntax);
        }
        6 => {
            let _ = svcctl::return_code(stub, be);
        }
        _ => {
            let _ = tasks::task_definition(&String::from_utf8_lossy(stub));
        }
    }
});
