//! Bidirectional flow table: timeouts, port reuse, caps.
