//! Per-direction TCP stream reassembly: ordering, overlaps (first copy wins), gaps.
