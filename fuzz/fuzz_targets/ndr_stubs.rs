//! NDR stub decoders of the interfaces the technique uses (svcctl, task scheduler, atsvc) and the
//! task XML scraper. Input: selector byte, opnum byte, stub.
#![no_main]

use libfuzzer_sys::fuzz_target;
use psexec_sensor::dcerpc::ndr::Syntax;
use psexec_sensor::dcerpc::{svcctl, tasks};
use psexec_sensor::event::DceArgs;

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
    let mut a = DceArgs::default();
    match sel & 7 {
        0 => svcctl::decode_request(opnum, stub, be, syntax, &mut a),
        1 => svcctl::decode_response(opnum, stub, be, syntax, &mut a),
        2 => tasks::decode_tsch_request(opnum, stub, be, syntax, &mut a),
        3 => tasks::decode_tsch_response(opnum, stub, be, syntax, &mut a),
        4 => tasks::decode_atsvc_request(opnum, stub, be, syntax, &mut a),
        5 => tasks::decode_atsvc_response(stub, be, &mut a),
        6 => {
            let _ = svcctl::return_code(stub, be);
        }
        _ => {
            let xml = String::from_utf8_lossy(stub);
            tasks::apply_task_xml(&xml, &mut a);
        }
    }
});
