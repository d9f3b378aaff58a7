//! Criterion benchmarks for `broker` (written with the crate).

fn main() {}
