//! SMB1 (NT LM 0.12).
