//! Criterion benchmarks for `ws_codec` (written with the crate).

fn main() {}
