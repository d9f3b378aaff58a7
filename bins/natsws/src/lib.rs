//! natsws: a NATS server whose first-class transport is WebSocket.
//!
//! This crate is the only part of natsws that does I/O: it parses the command line
//! (nats-server compatible), loads the configuration through `natsconf`, and runs one
//! single-threaded mio event loop that moves bytes between sockets (TCP, TLS, WebSocket, HTTP
//! monitoring) and the sans-IO crates (`broker`, `ws-handshake`, `ws-codec`).
//!
//! It is a library only so that its own sans-IO pieces (the monitoring request parser and the
//! endpoints) can be fuzzed; the `natsws` binary is one call to [`main`], and nothing else here
//! is public API.
// One module calls the OS where no safe wrapper exists (`sched`, the event loop's scheduler
// slice); everything else is safe code.
#![deny(unsafe_code)]

mod claims_dir;
mod cli;
mod conn;
mod durable;
mod hasher;
mod ids;
mod logger;
mod monitor;
mod monitor_request;
mod mqtt_store;
mod operator;
mod outbound;
mod procstat;
mod render;
mod sched;
mod server;
mod settings;
mod signal;
mod tls;

#[cfg(any(test, feature = "fuzzing"))]
#[doc(hidden)]
pub mod fuzzing;

use std::process::ExitCode;

use cli::Cli;
use settings::Settings;

/// Version printed by `-v`.
const VERSION: &str = env!("CARGO_PKG_VERSION");

fn prog_name(argv0: &str) -> String {
    std::path::Path::new(argv0)
        .file_name()
        .map_or_else(|| "natsws".to_owned(), |n| n.to_string_lossy().into_owned())
}

fn die(prog: &str, msg: &str) -> ExitCode {
    eprintln!("{prog}: {msg}");
    ExitCode::from(1)
}

/// Runs natsws with the process's arguments, as nats-server does: prints help, version or a
/// config check, sends a signal, or starts the server and returns when it stops.
#[must_use]
pub fn main() -> ExitCode {
    let mut args = std::env::args();
    let argv0 = args.next().unwrap_or_else(|| "natsws".to_owned());
    let prog = prog_name(&argv0);
    let cli = match Cli::parse(args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            print!("{}", cli::USAGE);
            return ExitCode::from(1);
        }
    };
    if cli.show_help || cli.args.first().is_some_and(|a| a == "help") {
        println!("{}", cli::USAGE);
        return ExitCode::SUCCESS;
    }
    if cli.show_version || cli.args.first().is_some_and(|a| a == "version") {
        println!("{prog}: v{VERSION}");
        return ExitCode::SUCCESS;
    }
    if cli.show_tls_help {
        println!("{}", cli::TLS_USAGE);
        return ExitCode::SUCCESS;
    }
    if let Some(sig) = &cli.signal {
        return match signal::send(&prog, sig) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => die(&prog, &e),
        };
    }
    if cli.dump_config {
        return settings::dump_config(&cli);
    }
    if cli.check_config {
        let Some(file) = &cli.config_file else {
            return die(
                &prog,
                "must specify [-c, --config] option to check configuration file syntax",
            );
        };
        return match settings::load(&cli) {
            Ok(s) if !s.config_warnings.is_empty() => {
                // nats-server -t treats a warnings-only report as a failure.
                die(&prog, &s.config_warnings.join("\n"))
            }
            Ok(_) => {
                eprintln!("{prog}: configuration file {file} is valid");
                ExitCode::SUCCESS
            }
            Err(e) => die(&prog, &e),
        };
    }
    let settings = match settings::load(&cli) {
        Ok(s) => s,
        Err(e) => return die(&prog, &e),
    };
    for w in &settings.config_warnings {
        eprintln!("{w}");
    }
    if let Err(e) = logger::init(&settings.log) {
        return die(&prog, &format!("unable to open log file: {e}"));
    }
    banner(&settings, cli.bare);
    let mut server = match server::Server::new(settings, cli) {
        Ok(s) => s,
        Err(e) => logger::fatal(&e),
    };
    if let Err(e) = server.write_files(&argv0) {
        logger::fatal(&e);
    }
    match server.run() {
        server::Exit::Clean => ExitCode::SUCCESS,
        server::Exit::Terminated => ExitCode::from(1),
    }
}

fn banner(settings: &Settings, bare: bool) {
    let cfg = &settings.broker;
    log::info!("Starting natsws");
    log::info!(
        "  Version:  {VERSION} (NATS protocol of nats-server {})",
        cfg.version
    );
    log::info!("  Git:      [not set]");
    let name = if cfg.server_name.is_empty() {
        &cfg.server_id
    } else {
        &cfg.server_name
    };
    log::info!("  Name:     {name}");
    log::info!("  ID:       {}", cfg.server_id);
    match &settings.config_file {
        Some(f) => log::info!("Using configuration file: {f}"),
        None if bare => {
            log::info!(
                "No configuration file given: using the built-in development defaults (NATS on 127.0.0.1:4222, WebSocket on ws://127.0.0.1:8080 without TLS, monitoring on http://127.0.0.1:8222)"
            );
            log::info!(
                "To change them pass -c <file> (see `natsws --help`), or override single values with -a, -p, -m"
            );
        }
        None => {}
    }
    for w in &settings.warnings {
        log::warn!("{w}");
    }
}
