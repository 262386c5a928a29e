//! What the sensor writes: JSON lines (events, alerts, flows), the human summary on stderr and
//! the HTML report.

pub mod json;
pub mod report;
pub mod summary;
