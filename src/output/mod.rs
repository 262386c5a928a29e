//! What the sensor writes: JSON lines (events, alerts, flows) and the human summary on stderr.

pub mod json;
pub mod stamp;
pub mod summary;
