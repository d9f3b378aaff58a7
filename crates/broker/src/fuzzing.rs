//! Fuzz target bodies (see `fuzz/fuzz_targets/broker_*.rs`).
