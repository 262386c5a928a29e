//! Alert records written by detection (`technique`, `signal`, `visibility`, `host_summary`).
//! Filled in by the detection issue; kept beside the protocol events so every output schema lives
//! in one module.
