//! Response-only inference on hand-made event sequences.
