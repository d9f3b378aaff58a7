//! The `natsws` binary: everything lives in the library (see its crate doc).

fn main() -> std::process::ExitCode {
    natsws::main()
}
