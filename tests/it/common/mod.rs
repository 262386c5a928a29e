//! Helpers shared by the integration-test modules (one convention: everything here, nothing of it
//! compiled into the library).
#![allow(dead_code)]

pub mod corpus;
pub mod insertion;
pub mod pipeline_run;
pub mod read_events;
pub mod reshape;
pub mod synthetic_run;
pub mod truth;
