//! Criterion benchmarks for `natsconf` (written with the crate).

fn main() {}
