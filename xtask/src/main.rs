//! Project automation, run as `cargo xtask <command>`.
//!
//! Every command is plain `std::process::Command` calls, so the xtask builds in seconds and needs
//! nothing but the Rust toolchain; tools it needs (cargo-fuzz, cargo-deny, Go for the config oracle,
//! the interop suite's Node and Python packages) are installed on first use.

mod tidy;

use std::env;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Instant;

const USAGE: &str = "\
usage: cargo xtask <command>

commands:
  ci                       everything CI runs: fmt, clippy, tidy, deny, fuzz smoke, interop, tests
  test                     the test suite alone (doc tests, then nextest over the workspace)
  fuzz [--seconds N] [T]   run every fuzz target (or T) for N seconds each (default 60)
  tidy                     house rules: sans-IO crates, no clock reads, seeds for every fuzz target
  deny                     cargo deny check licenses bans sources (installs cargo-deny if missing)
  oracle                   build the reference config parser (conforacle) and print its path
  interop                  set up and run the interop suite against natsws and nats-server
  packaging                check packaging/: `systemd-analyze verify` on the unit, and build the
                           container image where a docker daemon answers (part of ci)
  crates                   cargo package the reusable crates (part of ci)
  package                  the same as packaging
  bench [ARGS]             build release binaries and run the load generator (natsws against
                           nats-server): --vs PATH|none, --rounds N, --only NAMES, --scale F,
                           --markdown FILE, --list (see benches/loadgen/README.md)
";

type Result<T = ()> = std::result::Result<T, String>;

fn main() -> ExitCode {
    let args: Vec<String> = env::args().skip(1).collect();
    let Some((command, rest)) = args.split_first() else {
        eprint!("{USAGE}");
        return ExitCode::FAILURE;
    };
    let res = match command.as_str() {
        "ci" => ci(),
        "test" => test(),
        "fuzz" => fuzz_command(rest),
        "tidy" => tidy::run(&root()),
        "deny" => deny(),
        "oracle" => oracle().map(|path| println!("{}", path.display())),
        "interop" => interop(),
        "bench" => bench(rest),
        "packaging" => packaging(),
        "crates" => package_crates(),
        "package" => packaging(),
        "-h" | "--help" | "help" => {
            print!("{USAGE}");
            Ok(())
        }
        other => Err(format!("unknown command `{other}`\n{USAGE}")),
    };
    match res {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xtask: {message}");
            ExitCode::FAILURE
        }
    }
}

/// The workspace root (the parent of this crate's directory).
fn root() -> PathBuf {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest_dir.parent().unwrap_or(manifest_dir).to_path_buf()
}

fn cargo() -> Command {
    let mut cmd = Command::new(env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned()));
    cmd.current_dir(root());
    cmd
}

/// Runs `cmd`, echoing it first, and fails with its exit status.
fn run(cmd: &mut Command) -> Result {
    eprintln!("$ {}", describe(cmd));
    let status = cmd
        .status()
        .map_err(|e| format!("cannot start `{}`: {e}", describe(cmd)))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("`{}` failed: {status}", describe(cmd)))
    }
}

fn describe(cmd: &Command) -> String {
    let mut text = cmd.get_program().to_string_lossy().into_owned();
    for arg in cmd.get_args() {
        text.push(' ');
        text.push_str(&arg.to_string_lossy());
    }
    text
}

fn have(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program} >/dev/null 2>&1")])
        .status()
        .is_ok_and(|s| s.success())
}

/// Timed stage of `ci`, so a slow step is visible in the log.
fn stage(name: &str, f: impl FnOnce() -> Result) -> Result {
    eprintln!("==> {name}");
    let started = Instant::now();
    let res = f();
    eprintln!("<== {name}: {:.1}s", started.elapsed().as_secs_f64());
    res
}

fn ci() -> Result {
    stage("fmt", || run(cargo().args(["fmt", "--all", "--check"])))?;
    stage("clippy", || {
        run(cargo().args([
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ]))
    })?;
    stage("tidy", || tidy::run(&root()))?;
    stage("deny", deny)?;
    stage("packaging", packaging)?;
    stage("crates package", package_crates)?;
    stage("fuzz smoke", || fuzz(15, None))?;
    stage("interop", interop)?;
    // The test run comes last so that its summary line closes the log.
    stage("test", test)
}

/// Doc tests first (nextest does not run them), then nextest, whose `Summary` line closes the run.
///
/// The interop-dependent tests run for real here: the interop setup has installed their tools,
/// and `NATSWS_REQUIRE_INTEROP=1` turns a missing tool into a failure instead of a skip. In the
/// same way `NATSCONF_REFERENCE` points natsconf's option goldens at the installed nats-server,
/// and `NATSCONF_REQUIRE_REFERENCE=1` (also implied by `CI=true`) makes its absence a failure.
fn test() -> Result {
    let root = root();
    let interop = root.join("tests/interop");
    let python = interop.join(".venv/bin/python3");
    let node_modules = interop.join("node_modules");
    let oracle = oracle()?;
    run(cargo().args(["test", "--workspace", "--doc"]))?;
    let mut nextest = cargo();
    nextest
        .args(["nextest", "run", "--workspace", "--no-tests=warn"])
        .env("NATSCONF_ORACLE", &oracle);
    match reference_server() {
        Some(server) => {
            nextest
                .env("NATSCONF_REFERENCE", &server)
                .env("NATSCONF_REQUIRE_REFERENCE", "1");
        }
        None if in_ci() => {
            return Err(
                "nats-server (2.9.10) is not installed; CI compares natsconf's \
                 option reports with it"
                    .to_owned(),
            );
        }
        None => eprintln!(
            "note: nats-server not found; natsconf's option goldens are not compared with it"
        ),
    }
    if python.exists() && node_modules.exists() {
        nextest
            .env("NATSWS_REQUIRE_INTEROP", "1")
            .env("NATSWS_PYTHON", &python)
            .env("NATSWS_NODE_MODULES", &node_modules);
    } else {
        eprintln!(
            "note: interop tools not installed; run `cargo xtask interop` once to run every test"
        );
    }
    run(&mut nextest)
}

/// Whether this runs in CI (which sets `CI=true`).
fn in_ci() -> bool {
    env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// The reference nats-server: `NATSCONF_REFERENCE` if set, else `nats-server` on the `PATH`,
/// else Debian's `/usr/sbin/nats-server` (not on a normal user's `PATH`).
fn reference_server() -> Option<PathBuf> {
    if let Some(path) = env::var_os("NATSCONF_REFERENCE").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(path));
    }
    let on_path = env::var_os("PATH").and_then(|paths| {
        env::split_paths(&paths)
            .map(|dir| dir.join("nats-server"))
            .find(|candidate| candidate.is_file())
    });
    on_path.or_else(|| Some(PathBuf::from("/usr/sbin/nats-server")).filter(|p| p.is_file()))
}

fn fuzz_command(args: &[String]) -> Result {
    let mut seconds = 60;
    let mut target = None;
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--seconds" | "--time" => {
                let value = args.next().ok_or("--seconds needs a value")?;
                seconds = value
                    .parse()
                    .map_err(|_| format!("--seconds: not a number: {value}"))?;
            }
            name if !name.starts_with('-') && target.is_none() => target = Some(name.to_owned()),
            other => return Err(format!("fuzz: unexpected argument `{other}`")),
        }
    }
    fuzz(seconds, target.as_deref())
}

/// Builds every fuzz target once, then runs each (or just `only`) for `seconds`.
///
/// Uses cargo-fuzz on stable with `-s none`: the code the targets reach is safe Rust (every
/// library crate forbids `unsafe`; natsws' one unsafe module, its scheduler slice, is not
/// reached), so the sanitizer would only slow the fuzzer down. Seeds are copied into the working corpus first.
fn fuzz(seconds: u32, only: Option<&str>) -> Result {
    if !have("cargo-fuzz") {
        run(cargo().args(["install", "cargo-fuzz", "--locked", "--version", "^0.13"]))?;
    }
    let fuzz_dir = root().join("fuzz");
    let fuzz_cargo = || {
        let mut cmd = cargo();
        cmd.current_dir(&fuzz_dir).args(["fuzz"]);
        cmd
    };
    run(fuzz_cargo().args(["build", "-s", "none", "-a"]))?;
    let listing = fuzz_cargo()
        .arg("list")
        .output()
        .map_err(|e| format!("cargo fuzz list: {e}"))?;
    let targets: Vec<String> = String::from_utf8_lossy(&listing.stdout)
        .lines()
        .map(str::to_owned)
        .filter(|t| only.is_none_or(|o| o == t))
        .collect();
    if targets.is_empty() {
        return Err(format!("no fuzz target named {only:?}"));
    }
    let mut failed = Vec::new();
    for target in &targets {
        let corpus = fuzz_dir.join("corpus").join(target);
        std::fs::create_dir_all(&corpus).map_err(|e| format!("{}: {e}", corpus.display()))?;
        let seeds = fuzz_dir.join("seeds").join(target);
        let regressions = fuzz_dir.join("regressions").join(target);
        let log = fuzz_dir.join(format!("{target}.log"));
        let log_file =
            std::fs::File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
        let status = fuzz_cargo()
            .args(["run", "-s", "none", "-a", target])
            .arg(&corpus)
            .arg(&seeds)
            .arg(&regressions)
            .args([
                "--",
                &format!("-max_total_time={seconds}"),
                "-rss_limit_mb=2048",
            ])
            .stdout(log_file.try_clone().map_err(|e| e.to_string())?)
            .stderr(log_file)
            .status()
            .map_err(|e| format!("cargo fuzz run {target}: {e}"))?;
        if status.success() {
            eprintln!("fuzz ok: {target} ({seconds}s)");
        } else {
            eprintln!("FUZZ FAIL: {target}; see {}", log.display());
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            for line in text.lines().filter(|l| {
                l.contains("SUMMARY") || l.contains("panicked") || l.contains("Test unit written")
            }) {
                eprintln!("  {line}");
            }
            failed.push(target.clone());
        }
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(format!("fuzz targets failed: {}", failed.join(", ")))
    }
}

fn deny() -> Result {
    if !have("cargo-deny") {
        run(cargo().args(["install", "cargo-deny", "--locked"]))?;
    }
    // `advisories` needs the RustSec database from the network, which CI does not have.
    run(cargo().args(["deny", "check", "licenses", "bans", "sources"]))
}

/// Installs Debian packages that are missing (CI runs as root on a fresh machine).
fn apt_install(packages: &[&str]) -> Result {
    let missing: Vec<&str> = packages
        .iter()
        .copied()
        .filter(|p| {
            !Command::new("dpkg")
                .args(["-s", p])
                .output()
                .is_ok_and(|o| o.status.success())
        })
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let sudo = if Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0"))
    {
        vec![]
    } else {
        vec!["sudo"]
    };
    let mut update = Command::new(sudo.first().copied().unwrap_or("apt-get"));
    if !sudo.is_empty() {
        update.arg("apt-get");
    }
    run(update.args(["update", "-qq"]))?;
    let mut install = Command::new(sudo.first().copied().unwrap_or("apt-get"));
    if !sudo.is_empty() {
        install.arg("apt-get");
    }
    run(install
        .env("DEBIAN_FRONTEND", "noninteractive")
        .args(["install", "-y", "-qq"])
        .args(&missing))
}

/// Builds conforacle (`xtask/conforacle/main.go`): nats-server 2.9.10's own `conf` package
/// behind the typed-JSON printer, used by natsconf's differential tests. Returns the binary's path.
fn oracle() -> Result<PathBuf> {
    let root = root();
    let out_dir = root.join("target/conforacle");
    let binary = out_dir.join("conforacle");
    let source = root.join("xtask/conforacle/main.go");
    let fresh = |b: &Path| {
        let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
        matches!((modified(b), modified(&source)), (Some(b), Some(s)) if b >= s)
    };
    if fresh(&binary) {
        return Ok(binary);
    }
    apt_install(&["golang-go", "golang-github-nats-io-nats-server-dev"])?;
    std::fs::create_dir_all(&out_dir).map_err(|e| format!("{}: {e}", out_dir.display()))?;
    std::fs::copy(&source, out_dir.join("main.go"))
        .map_err(|e| format!("{}: {e}", source.display()))?;
    run(Command::new("go")
        .current_dir(&out_dir)
        .env("GO111MODULE", "off")
        .env("GOPATH", "/usr/share/gocode")
        .env("GOFLAGS", "")
        .env("GOPROXY", "off")
        .env("GOCACHE", out_dir.join("gocache"))
        .args(["build", "-o", "conforacle", "."]))?;
    Ok(binary)
}

/// Builds natsws and the load generator in release mode and runs the load generator with
/// natsws as server A; the remaining arguments go to the load generator.
fn bench(args: &[String]) -> Result {
    run(cargo().args(["build", "--release", "-p", "natsws", "-p", "loadgen"]))?;
    let target =
        env::var_os("CARGO_TARGET_DIR").map_or_else(|| root().join("target"), PathBuf::from);
    let release = target.join("release");
    run(Command::new(release.join("loadgen"))
        .current_dir(root())
        .arg("--server")
        .arg(release.join("natsws"))
        .args(args))
}

/// Installs the interop suite's tools and runs it against natsws and nats-server.
fn interop() -> Result {
    let root = root();
    run(cargo().args(["build", "-p", "natsws"]))?;
    run(Command::new(root.join("tests/interop/setup")).current_dir(&root))?;
    run(Command::new(root.join("tests/interop/run-all"))
        .current_dir(&root)
        .arg("--natsws")
        .arg(root.join("target/debug/natsws")))
}

/// Checks the systemd unit with `systemd-analyze verify`, with `ExecStart` pointed at the debug
/// binary (verify requires the executable to exist). Skips, saying why, where systemd-analyze
/// is missing; then builds the container image where a docker daemon answers, and says why it
/// skips otherwise (a release build inside a container takes minutes on two cores).
fn packaging() -> Result {
    let root = root();
    if !have("systemd-analyze") {
        eprintln!("packaging: SKIP systemd unit check: systemd-analyze is not installed");
    } else {
        run(cargo().args(["build", "-p", "natsws"]))?;
        let unit = root.join("packaging/systemd/natsws.service");
        let text =
            std::fs::read_to_string(&unit).map_err(|e| format!("{}: {e}", unit.display()))?;
        let binary = root.join("target/debug/natsws");
        let text = text.replace("/usr/bin/natsws", &binary.to_string_lossy());
        let dir = root.join("target/packaging");
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let copy = dir.join("natsws.service");
        std::fs::write(&copy, text).map_err(|e| format!("{}: {e}", copy.display()))?;
        run(Command::new("systemd-analyze").arg("verify").arg(&copy))?;
    }
    // The image is built where a container runtime answers, and the skip is said otherwise.
    image()
}

/// Builds packaging/Dockerfile where a container runtime answers; says why it skips otherwise.
fn image() -> Result {
    if !have("docker") {
        eprintln!("package: SKIP image build: no docker client on the PATH");
        return Ok(());
    }
    let info = Command::new("docker")
        .args(["info", "--format", "{{.ServerVersion}}"])
        .output()
        .map_err(|e| format!("docker info: {e}"))?;
    if !info.status.success() {
        eprintln!(
            "package: SKIP image build: the docker daemon is not reachable ({})",
            String::from_utf8_lossy(&info.stderr).trim()
        );
        return Ok(());
    }
    run(Command::new("docker").current_dir(root()).args([
        "build",
        "-f",
        "packaging/Dockerfile",
        "-t",
        "natsws:dev",
        ".",
    ]))
}

/// The crates meant for reuse by other projects; `broker` is not among them yet.
const PUBLISHED_CRATES: &[&str] = &[
    "gotext",
    "ws-codec",
    "ws-handshake",
    "natsconf",
    "broker",
    "mqtt-codec",
];

/// `cargo package` for the reusable crates, together so that their path dependencies on each
/// other resolve. No `--verify` build: each would rebuild its dependency tree, and the
/// workspace build already compiles the same sources; `--offline` because CI has no network.
fn package_crates() -> Result {
    let mut cmd = cargo();
    cmd.args(["package", "--allow-dirty", "--no-verify", "--offline"]);
    for name in PUBLISHED_CRATES {
        cmd.args(["-p", name]);
    }
    run(&mut cmd)
}
