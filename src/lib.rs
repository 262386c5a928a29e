//! psexec-sensor: finds PsExec-style lateral movement (remote service or task creation over SMB and
//! DCE-RPC) in network traffic.
//!
//! The modules follow the data, one way:
//! capture → decode → flow (TCP reassembly) → smb / dcerpc → event → detect → output.

pub mod app;
pub mod capture;
pub mod cli;
pub mod cmd;
pub mod config;
pub mod dcerpc;
pub mod decode;
pub mod detect;
pub mod eval;
pub mod event;
pub mod flow;
pub mod kerberos;
pub mod output;
pub mod pipeline;
pub mod sink;
pub mod smb;
pub mod time;
pub mod wire;
