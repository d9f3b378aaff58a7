//! natsws's load generator: starts fresh servers, runs the scenario matrix against each in
//! turn, checks every message, and prints medians, spreads and ratios side by side.
//!
//! Run it through `cargo xtask bench`, which builds the release binaries first; see
//! `benches/loadgen/README.md`. Loopback only: every server it talks to is one it started on
//! 127.0.0.1.

#![forbid(unsafe_code)]

mod conn;
mod mqtt;
mod payload;
mod proto;
mod report;
mod scenarios;
mod server;
mod stats;
mod sys;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use report::{RunResult, ScenarioRuns};
use scenarios::{ALL, Env, Outcome, Scenario};
use server::Pki;

const USAGE: &str = "\
usage: loadgen [options]

  --server PATH     the server under test, A (default target/release/natsws)
  --vs PATH|none    the server to compare with, B (default /usr/sbin/nats-server if installed)
  --rounds N        runs of each scenario per server (default 3); the table shows medians
  --only NAMES      comma-separated scenario names (default: all; see --list)
  --scale F         multiply message and connection counts by F (default 1; e.g. 0.01 to try)
  --timeout S       the most one run may take, in seconds (default 120)
  --stall S         a run fails after S seconds without a message delivered (default 10;
                    longer for a server run under valgrind)
  --markdown FILE   also write the run as a Markdown section (header and table) to FILE
  --busy N          run N busy-looping processes beside every run (a fixed background load)
  --hub PATH        the hub of the leaf scenarios, for both servers' edges (default
                    /usr/sbin/nats-server; a natsws hub leaves more CPU to the edge)
  --list            list the scenarios and exit
";

struct Options {
    server: PathBuf,
    vs: Option<PathBuf>,
    rounds: usize,
    only: Vec<&'static Scenario>,
    scale: f64,
    timeout: Duration,
    stall: Duration,
    markdown: Option<PathBuf>,
    busy: usize,
    hub: PathBuf,
}

fn parse_args(args: &[String]) -> Result<Option<Options>, String> {
    let default_vs = Path::new("/usr/sbin/nats-server");
    let mut options = Options {
        server: PathBuf::from("target/release/natsws"),
        vs: default_vs.is_file().then(|| default_vs.to_owned()),
        rounds: 3,
        only: ALL.iter().collect(),
        scale: 1.0,
        timeout: Duration::from_secs(120),
        stall: Duration::from_secs(10),
        markdown: None,
        busy: 0,
        hub: PathBuf::from(server::HUB),
    };
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let mut value = || {
            args.next()
                .cloned()
                .ok_or_else(|| format!("{arg} needs a value"))
        };
        match arg.as_str() {
            "--server" => options.server = PathBuf::from(value()?),
            "--vs" => {
                let v = value()?;
                options.vs = (v != "none").then(|| PathBuf::from(v));
            }
            "--rounds" => {
                options.rounds = value()?
                    .parse()
                    .ok()
                    .filter(|n| (1..=100).contains(n))
                    .ok_or("--rounds: a number from 1 to 100")?;
            }
            "--only" => options.only = select(&value()?)?,
            "--scale" => {
                options.scale = value()?
                    .parse()
                    .ok()
                    .filter(|s: &f64| *s > 0.0 && *s <= 10.0)
                    .ok_or("--scale: a number above 0, at most 10")?;
            }
            "--timeout" => {
                let secs: u64 = value()?
                    .parse()
                    .ok()
                    .filter(|s| (1..=3600).contains(s))
                    .ok_or("--timeout: seconds from 1 to 3600")?;
                options.timeout = Duration::from_secs(secs);
            }
            "--stall" => {
                let secs: u64 = value()?
                    .parse()
                    .ok()
                    .filter(|s| (1..=3600).contains(s))
                    .ok_or("--stall: seconds from 1 to 3600")?;
                options.stall = Duration::from_secs(secs);
            }
            "--markdown" => options.markdown = Some(PathBuf::from(value()?)),
            "--hub" => options.hub = PathBuf::from(value()?),
            "--busy" => {
                options.busy = value()?
                    .parse()
                    .ok()
                    .filter(|n| *n <= 16)
                    .ok_or("--busy: a number from 0 to 16")?;
            }
            "--spin" => {
                let secs: u64 = value()?.parse().map_err(|_| "--spin: seconds")?;
                spin(Duration::from_secs(secs.min(3600)));
                return Ok(None);
            }
            "--list" => {
                for s in ALL {
                    println!("{:<14} {}", s.name, s.title);
                }
                return Ok(None);
            }
            "-h" | "--help" => {
                print!("{USAGE}");
                return Ok(None);
            }
            other => return Err(format!("unknown argument `{other}`\n{USAGE}")),
        }
    }
    Ok(Some(options))
}

/// The scenarios named in a comma-separated list, in table order.
fn select(names: &str) -> Result<Vec<&'static Scenario>, String> {
    let wanted: Vec<&str> = names
        .split(',')
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .collect();
    if let Some(unknown) = wanted.iter().find(|n| !ALL.iter().any(|s| s.name == **n)) {
        let known: Vec<&str> = ALL.iter().map(|s| s.name).collect();
        return Err(format!(
            "no scenario named `{unknown}`; the scenarios are {}",
            known.join(", ")
        ));
    }
    if wanted.is_empty() {
        return Err("--only: no scenario named".to_owned());
    }
    Ok(ALL.iter().filter(|s| wanted.contains(&s.name)).collect())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match parse_args(&args) {
        Ok(None) => ExitCode::SUCCESS,
        Ok(Some(options)) => match suite(&options) {
            Ok(true) => ExitCode::SUCCESS,
            Ok(false) => ExitCode::FAILURE,
            Err(e) => {
                eprintln!("loadgen: {e}");
                ExitCode::FAILURE
            }
        },
        Err(e) => {
            eprintln!("loadgen: {e}");
            ExitCode::from(2)
        }
    }
}

fn display_name(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

/// Runs the suite; `Ok(false)` when a run failed.
fn suite(options: &Options) -> Result<bool, String> {
    let mut servers = vec![options.server.clone()];
    servers.extend(options.vs.clone());
    for program in &servers {
        if !program.is_file() {
            return Err(format!("no server at {}", program.display()));
        }
    }
    let files = sys::raise_open_files_limit();
    let work = std::env::temp_dir().join(format!("natsws-loadgen-{}", std::process::id()));
    std::fs::create_dir_all(&work).map_err(|e| format!("{}: {e}", work.display()))?;
    let pki = if options.only.iter().any(|s| s.needs_tls()) {
        Some(server::make_pki(&work.join("pki"))?)
    } else {
        None
    };
    let load_before = sys::load_average();
    let started = Instant::now();
    eprintln!(
        "loadgen: {} round(s) of {} scenario(s) on {}; open-files limit {files}",
        options.rounds,
        options.only.len(),
        servers
            .iter()
            .map(|s| s.display().to_string())
            .collect::<Vec<_>>()
            .join(" and ")
    );
    let mut results: Vec<ScenarioRuns> = options
        .only
        .iter()
        .map(|scenario| ScenarioRuns {
            scenario,
            runs: vec![Vec::new(); servers.len()],
        })
        .collect();
    let mut run_number = 0;
    for round in 0..options.rounds {
        for result in &mut results {
            // Alternate which server goes first, so that drift on the machine hits both.
            let mut order: Vec<usize> = (0..servers.len()).collect();
            if round % 2 == 1 {
                order.reverse();
            }
            for side in order {
                run_number += 1;
                let dir = work.join(format!("run-{run_number}"));
                let outcome =
                    run_once(result.scenario, &servers[side], &dir, pki.as_ref(), options);
                eprintln!(
                    "[round {}/{}] {:<13} {} ({}): {} (load {:.1})",
                    round + 1,
                    options.rounds,
                    result.scenario.name,
                    if side == 0 { 'A' } else { 'B' },
                    display_name(&servers[side]),
                    summary(&outcome),
                    sys::load_average().unwrap_or(f64::NAN)
                );
                if outcome.is_ok() {
                    let _ = std::fs::remove_dir_all(&dir);
                }
                if let Some(runs) = result.runs.get_mut(side) {
                    runs.push(outcome);
                }
            }
        }
    }
    let load_after = sys::load_average();
    let rows: Vec<report::Row> = results.iter().flat_map(report::rows).collect();
    println!(
        "loadgen: A = {}{}; median of {} round(s), fresh server per run{}",
        servers[0].display(),
        servers
            .get(1)
            .map(|b| format!("; B = {}", b.display()))
            .unwrap_or_default(),
        options.rounds,
        if options.scale == 1.0 {
            String::new()
        } else {
            format!("; counts scaled by {}", options.scale)
        }
    );
    print!("{}", report::text(&rows, servers.len()));
    if let Some(path) = &options.markdown {
        let names: Vec<String> = servers.iter().map(|s| display_name(s)).collect();
        let mut text = markdown_header(options, &servers, load_before, load_after, started);
        text.push_str(&report::markdown(&rows, &names));
        std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))?;
        eprintln!("loadgen: wrote {}", path.display());
    }
    let failed = results
        .iter()
        .flat_map(|r| r.runs.iter().flatten())
        .any(Result::is_err);
    if !failed {
        let _ = std::fs::remove_dir_all(&work);
    } else {
        eprintln!("loadgen: logs of the failed runs are in {}", work.display());
    }
    Ok(!failed)
}

/// Burns CPU for `limit` (the body of a `--busy` process).
fn spin(limit: Duration) {
    let started = Instant::now();
    let mut x = 1u64;
    while started.elapsed() < limit {
        for _ in 0..1_000_000 {
            x = std::hint::black_box(x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1));
        }
    }
}

/// Busy-looping child processes, stopped when dropped (and by themselves after the run's
/// time limit, should this process die first).
struct Busy(Vec<std::process::Child>);

impl Busy {
    fn start(n: usize, timeout: Duration) -> Result<Self, String> {
        let exe = std::env::current_exe().map_err(|e| format!("own path: {e}"))?;
        let mut busy = Self(Vec::new());
        for _ in 0..n {
            let child = Command::new(&exe)
                .arg("--spin")
                .arg((timeout.as_secs() + 60).to_string())
                .spawn()
                .map_err(|e| format!("busy process: {e}"))?;
            busy.0.push(child);
        }
        Ok(busy)
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn run_once(
    scenario: &Scenario,
    program: &Path,
    dir: &Path,
    pki: Option<&Pki>,
    options: &Options,
) -> RunResult {
    let tls = if scenario.needs_tls() { pki } else { None };
    if let Some(why) = scenario.natsws_only()
        && server::is_nats_server(program)
    {
        return Ok(Outcome::Skipped(why.to_owned()));
    }
    let _busy = Busy::start(options.busy, options.timeout)?;
    let server::Run {
        server,
        hub,
        more_edges,
    } = server::start_run(
        program,
        &options.hub,
        dir,
        tls,
        scenario.leaf_edges(),
        scenario.is_mqtt(),
    )?;
    let env = Env {
        server: &server,
        more_edges: &more_edges,
        hub: hub.as_ref(),
        tls: tls.map(|p| p.client.clone()),
        scale: options.scale,
        timeout: options.timeout,
        stall: options.stall,
    };
    scenarios::run(scenario, &env).map_err(|e| {
        let log = server.log_tail();
        if log.is_empty() {
            e
        } else {
            format!("{e}; server log ends: {log}")
        }
    })
}

fn summary(outcome: &RunResult) -> String {
    match outcome {
        Err(e) => format!("FAILED: {e}"),
        Ok(Outcome::Skipped(why)) => format!("skipped: {why}"),
        Ok(Outcome::Measured(figures)) => figures
            .iter()
            .take(2)
            .map(|f| format!("{} {}", f.label, stats::fmt_num(f.value)))
            .collect::<Vec<_>>()
            .join(", "),
    }
}

fn command_output(program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program).args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// What a reader of BENCHMARKS.md needs to judge a run: when, which commit, what machine, how
/// busy it was, and the command.
fn markdown_header(
    options: &Options,
    servers: &[PathBuf],
    load_before: Option<f64>,
    load_after: Option<f64>,
    started: Instant,
) -> String {
    let date = command_output("date", &["-u", "+%Y-%m-%d %H:%M UTC"]).unwrap_or_default();
    let commit = command_output("git", &["rev-parse", "--short", "HEAD"])
        .map(|c| {
            let dirty = command_output("git", &["status", "--porcelain", "--untracked-files=no"])
                .is_some_and(|s| !s.is_empty());
            if dirty {
                format!("{c} (with local changes)")
            } else {
                c
            }
        })
        .unwrap_or_else(|| "unknown".to_owned());
    let cpus = std::thread::available_parallelism().map_or(0, usize::from);
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_owned())
        })
        .unwrap_or_default();
    let mem_gib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_ascii_whitespace().nth(1))
                .and_then(|kib| kib.parse::<f64>().ok())
        })
        .map_or(0.0, |kib| kib / 1024.0 / 1024.0);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|k| k.trim().to_owned())
        .unwrap_or_default();
    let mut command = format!("cargo xtask bench --rounds {}", options.rounds);
    if let Some(vs) = servers.get(1) {
        command.push_str(&format!(" --vs {}", vs.display()));
    }
    if options.only.len() != ALL.len() {
        let names: Vec<&str> = options.only.iter().map(|s| s.name).collect();
        command.push_str(&format!(" --only {}", names.join(",")));
    }
    if options.busy > 0 {
        command.push_str(&format!(" --busy {}", options.busy));
    }
    if options.scale != 1.0 {
        command.push_str(&format!(" --scale {}", options.scale));
    }
    if options.hub != Path::new(server::HUB) {
        command.push_str(&format!(" --hub {}", options.hub.display()));
    }
    let load = |l: Option<f64>| l.map_or_else(|| "?".to_owned(), |l| format!("{l:.1}"));
    let version = |p: &Path| {
        command_output(&p.display().to_string(), &["--version"])
            .unwrap_or_else(|| p.display().to_string())
    };
    let busy = match options.busy {
        0 => String::new(),
        n => format!(" {n} busy-looping process(es) ran beside every run (`--busy {n}`)."),
    };
    format!(
        "## Run of {date}\n\n\
         `{command}`, natsws at commit `{commit}` (release profile), {} min. \
         A = {} (`{}`), B = {}. Machine: {cpus} CPUs ({model}), {mem_gib:.0} GiB, Linux {kernel}, \
         everything on loopback; the load generator shares the CPUs with the server.{busy} \
         1-minute load average {} before the run, {} after. Each figure is the median over the \
         rounds, each run on a freshly started server, the servers alternating; spread is half \
         the range in % of the median; every message of every run was checked (count, size, \
         order, content).\n\n",
        started.elapsed().as_secs().div_ceil(60),
        servers[0].display(),
        version(&servers[0]),
        servers.get(1).map_or_else(
            || "none".to_owned(),
            |b| format!("{} (`{}`)", b.display(), version(b))
        ),
        load(load_before),
        load(load_after),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Option<Options>, String> {
        parse_args(&args.iter().map(|a| (*a).to_owned()).collect::<Vec<_>>())
    }

    #[test]
    fn only_selects_known_names_in_table_order() {
        let names: Vec<&str> = select("reqrep, tcp_128")
            .unwrap()
            .iter()
            .map(|s| s.name)
            .collect();
        assert_eq!(names, ["tcp_128", "reqrep"]);
        let err = select("tcp_128,ws_129").err().unwrap();
        assert!(err.starts_with("no scenario named `ws_129`"), "{err}");
        assert!(select(",").is_err());
    }

    #[test]
    fn options_are_checked() {
        let o = parse(&[
            "--rounds", "5", "--vs", "none", "--busy", "2", "--scale", "0.5",
        ])
        .unwrap()
        .unwrap();
        assert_eq!((o.rounds, o.vs, o.busy, o.scale), (5, None, 2, 0.5));
        assert_eq!(o.only.len(), ALL.len());
        for bad in [
            &["--rounds", "0"][..],
            &["--busy", "17"],
            &["--scale", "0"],
            &["--timeout", "x"],
            &["--rounds"],
            &["--frobnicate"],
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn scenario_names_are_unique() {
        let mut names: Vec<&str> = ALL.iter().map(|s| s.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), ALL.len());
    }
}
