//! The integration tests: one binary, one module per area (issue 19). Shared helpers live in
//! `common/` (and `detect_util` for hand-made detector event sequences).

mod common;
mod detect_util;

mod archives;
mod caps;
mod caps_documented;
mod caps_malformed;
mod detect_bounded;
mod detect_eval;
mod detect_matcher;
mod detect_rules;
mod eval_cli;
mod eval_corpus;
mod evasion;
mod inferred_captures;
mod insertion;
mod kerberos;
mod kerberos_lab;
mod kerberos_rpc;
mod live_cli;
mod live_fanout;
mod live_netns;
mod one_sided;
mod outputs;
mod read_alerts;
mod read_cli;
mod reassembly;
mod report_html;
mod service_change;
mod smb1_lab;
mod smb2_lab;
mod smb3_compression;
mod smb3_encrypted_cli;
mod truth_events;
mod tshark_crosscheck;
mod zeek_compare;
