//! Writers: JSON lines and the human summary.
