//! Criterion benchmarks for `ws_handshake` (written with the crate).

fn main() {}
