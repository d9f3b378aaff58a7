//! Command-line parsing compatible with nats-server 2.9.10 (its `main.go` flag set and
//! `server/opts.go` `ConfigureOptions`).
//!
//! The rules are Go's `flag` package: one or two dashes are the same, a value follows as the
//! next argument or after `=`, booleans take no argument (`-D`, `-D=false`), parsing stops at
//! the first positional argument or at `--`, and a later flag overrides an earlier one.

use std::fmt;

use crate::logger::LogFormat;

/// Every option the command line can set. `None` means "not given": the config file (or the
/// built-in default) decides.
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct Cli {
    pub(crate) config_file: Option<String>,
    pub(crate) host: Option<String>,
    pub(crate) port: Option<i64>,
    pub(crate) server_name: Option<String>,
    pub(crate) client_advertise: Option<String>,
    pub(crate) http_port: Option<i64>,
    pub(crate) https_port: Option<i64>,
    pub(crate) pid_file: Option<String>,
    pub(crate) ports_file_dir: Option<String>,
    pub(crate) log_file: Option<String>,
    pub(crate) log_size_limit: Option<i64>,
    pub(crate) max_traced_msg_len: Option<i64>,
    pub(crate) syslog: Option<bool>,
    pub(crate) remote_syslog: Option<String>,
    pub(crate) debug: Option<bool>,
    pub(crate) trace: Option<bool>,
    pub(crate) trace_verbose: Option<bool>,
    pub(crate) logtime: Option<bool>,
    /// `--log_format text|json`, a natsws extension.
    pub(crate) log_format: Option<LogFormat>,
    pub(crate) user: Option<String>,
    pub(crate) pass: Option<String>,
    pub(crate) auth: Option<String>,
    pub(crate) tls: Option<bool>,
    pub(crate) tls_verify: Option<bool>,
    pub(crate) tls_cert: Option<String>,
    pub(crate) tls_key: Option<String>,
    pub(crate) tls_ca_cert: Option<String>,
    pub(crate) jetstream: Option<bool>,
    pub(crate) store_dir: Option<String>,
    /// Cluster flags are recognised so the error can name them; natsws has no routes.
    pub(crate) cluster_flags: Vec<String>,
    pub(crate) profile_port: Option<i64>,
    pub(crate) check_config: bool,
    pub(crate) signal: Option<String>,
    pub(crate) show_help: bool,
    pub(crate) show_tls_help: bool,
    pub(crate) show_version: bool,
    pub(crate) dump_config: bool,
    pub(crate) dump_positions: bool,
    /// Positional arguments after the flags.
    pub(crate) args: Vec<String>,
    /// Started with no arguments at all: the built-in development config applies. Any flag
    /// without `-c` starts from nats-server's defaults instead, opening only what is asked for.
    pub(crate) bare: bool,
}

/// A command-line error, printed as nats-server prints it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CliError {
    /// `flag provided but not defined: -x`
    Unknown(String),
    /// `flag needs an argument: -x`
    MissingValue(String),
    /// `invalid value "v" for flag -x: parse error` (`kind` empty), or
    /// `invalid boolean value "v" for -x: parse error` (Go's `flag` words them differently).
    BadValue {
        flag: String,
        value: String,
        kind: &'static str,
    },
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unknown(name) => write!(f, "flag provided but not defined: -{name}"),
            Self::MissingValue(name) => write!(f, "flag needs an argument: -{name}"),
            Self::BadValue { flag, value, kind } => {
                if kind.is_empty() {
                    write!(f, "invalid value \"{value}\" for flag -{flag}: parse error")
                } else {
                    write!(
                        f,
                        "invalid {kind} value \"{value}\" for -{flag}: parse error"
                    )
                }
            }
        }
    }
}

enum Kind {
    Bool,
    Str,
    Int,
}

fn kind_of(name: &str) -> Option<Kind> {
    Some(match name {
        "h" | "help" | "D" | "debug" | "V" | "trace" | "VV" | "DV" | "DVV" | "T" | "logtime"
        | "t" | "s" | "syslog" | "v" | "version" | "help_tls" | "tls" | "tlsverify" | "js"
        | "jetstream" | "no_advertise" | "dump-config" | "dump_config" | "positions" => Kind::Bool,
        "p" | "port" | "m" | "http_port" | "ms" | "https_port" | "log_size_limit"
        | "max_traced_msg_len" | "profile" | "connect_retries" => Kind::Int,
        "n" | "name" | "server_name" | "a" | "addr" | "net" | "client_advertise" | "user"
        | "pass" | "auth" | "c" | "config" | "sl" | "signal" | "P" | "pid" | "ports_file_dir"
        | "l" | "log" | "r" | "remote_syslog" | "routes" | "cluster" | "cluster_listen"
        | "cluster_advertise" | "cluster_name" | "tlscert" | "tlskey" | "tlscacert" | "sd"
        | "store_dir" | "log_format" => Kind::Str,
        _ => return None,
    })
}

fn parse_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

fn parse_int(s: &str) -> Option<i64> {
    // Go's flag package parses ints with base 0: decimal, 0x hex, 0o/0 octal, 0b binary.
    let (neg, body) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let body = body.replace('_', "");
    let value = if let Some(hex) = body.strip_prefix("0x").or_else(|| body.strip_prefix("0X")) {
        i64::from_str_radix(hex, 16).ok()?
    } else if let Some(bin) = body.strip_prefix("0b").or_else(|| body.strip_prefix("0B")) {
        i64::from_str_radix(bin, 2).ok()?
    } else if let Some(oct) = body.strip_prefix("0o").or_else(|| body.strip_prefix("0O")) {
        i64::from_str_radix(oct, 8).ok()?
    } else if body.len() > 1 && body.starts_with('0') {
        i64::from_str_radix(&body[1..], 8).ok()?
    } else {
        body.parse::<i64>().ok()?
    };
    Some(if neg { -value } else { value })
}

impl Cli {
    /// Parses `args` (without the program name).
    pub(crate) fn parse<I, S>(args: I) -> Result<Self, CliError>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut cli = Self::default();
        let mut it = args.into_iter().map(Into::into).peekable();
        cli.bare = it.peek().is_none();
        while let Some(arg) = it.next() {
            if arg == "--" {
                cli.args.extend(it.by_ref());
                break;
            }
            let Some(stripped) = arg.strip_prefix('-').filter(|s| !s.is_empty()) else {
                cli.args.push(arg);
                cli.args.extend(it.by_ref());
                break;
            };
            let stripped = stripped.strip_prefix('-').unwrap_or(stripped);
            if stripped.is_empty() || stripped.starts_with('-') || stripped.starts_with('=') {
                return Err(CliError::Unknown(stripped.to_owned()));
            }
            let (name, inline) = match stripped.split_once('=') {
                Some((n, v)) => (n.to_owned(), Some(v.to_owned())),
                None => (stripped.to_owned(), None),
            };
            let Some(kind) = kind_of(&name) else {
                return Err(CliError::Unknown(name));
            };
            match kind {
                Kind::Bool => {
                    let value = match inline {
                        None => true,
                        Some(v) => parse_bool(&v).ok_or_else(|| CliError::BadValue {
                            flag: name.clone(),
                            value: v.clone(),
                            kind: "boolean",
                        })?,
                    };
                    cli.set_bool(&name, value);
                }
                Kind::Str | Kind::Int => {
                    let value = match inline {
                        Some(v) => v,
                        None => it
                            .next()
                            .ok_or_else(|| CliError::MissingValue(name.clone()))?,
                    };
                    if matches!(kind, Kind::Int) {
                        let n = parse_int(&value).ok_or_else(|| CliError::BadValue {
                            flag: name.clone(),
                            value: value.clone(),
                            kind: "",
                        })?;
                        cli.set_int(&name, n);
                    } else if name == "log_format" {
                        // Go's flag package reports a flag.Value's Set error this way.
                        let format =
                            LogFormat::parse(&value).ok_or_else(|| CliError::BadValue {
                                flag: name.clone(),
                                value: value.clone(),
                                kind: "",
                            })?;
                        cli.log_format = Some(format);
                    } else {
                        cli.set_str(&name, value);
                    }
                }
            }
        }
        Ok(cli)
    }

    fn set_bool(&mut self, name: &str, value: bool) {
        match name {
            "h" | "help" => self.show_help = value,
            "D" | "debug" => self.debug = Some(value),
            "V" | "trace" => self.trace = Some(value),
            "VV" => {
                self.trace = Some(value);
                self.trace_verbose = Some(value);
            }
            "DV" => {
                self.debug = Some(value);
                self.trace = Some(value);
            }
            "DVV" => {
                self.debug = Some(value);
                self.trace = Some(value);
                self.trace_verbose = Some(value);
            }
            "T" | "logtime" => self.logtime = Some(value),
            "t" => self.check_config = value,
            "s" | "syslog" => self.syslog = Some(value),
            "v" | "version" => self.show_version = value,
            "help_tls" => self.show_tls_help = value,
            "tls" => self.tls = Some(value),
            "tlsverify" => self.tls_verify = Some(value),
            "js" | "jetstream" => self.jetstream = Some(value),
            "dump-config" | "dump_config" => self.dump_config = value,
            "positions" => self.dump_positions = value,
            other => self.cluster_flags.push(other.to_owned()),
        }
    }

    fn set_int(&mut self, name: &str, value: i64) {
        match name {
            "p" | "port" => self.port = Some(value),
            "m" | "http_port" => self.http_port = Some(value),
            "ms" | "https_port" => self.https_port = Some(value),
            "log_size_limit" => self.log_size_limit = Some(value),
            "max_traced_msg_len" => self.max_traced_msg_len = Some(value),
            "profile" => self.profile_port = Some(value),
            other => self.cluster_flags.push(other.to_owned()),
        }
    }

    fn set_str(&mut self, name: &str, value: String) {
        match name {
            "n" | "name" | "server_name" => self.server_name = Some(value),
            "a" | "addr" | "net" => self.host = Some(value),
            "client_advertise" => self.client_advertise = Some(value),
            "user" => self.user = Some(value),
            "pass" => self.pass = Some(value),
            "auth" => self.auth = Some(value),
            "c" | "config" => self.config_file = Some(value),
            "sl" | "signal" => self.signal = Some(value),
            "P" | "pid" => self.pid_file = Some(value),
            "ports_file_dir" => self.ports_file_dir = Some(value),
            "l" | "log" => self.log_file = Some(value),
            "r" | "remote_syslog" => self.remote_syslog = Some(value),
            "tlscert" => self.tls_cert = Some(value),
            "tlskey" => self.tls_key = Some(value),
            "tlscacert" => self.tls_ca_cert = Some(value),
            "sd" | "store_dir" => self.store_dir = Some(value),
            other => self.cluster_flags.push(other.to_owned()),
        }
    }
}

/// The `-h` text.
pub(crate) const USAGE: &str = "
Usage: natsws [options]

Server Options:
    -a, --addr, --net <host>         Bind to host address (default: 127.0.0.1 without -c)
    -p, --port <port>                Use port for clients (default: 4222, -1 for random)
    -n, --name
        --server_name <server_name>  Server name (default: auto)
    -P, --pid <file>                 File to store PID
    -m, --http_port <port>           Use port for http monitoring
    -ms,--https_port <port>          Use port for https monitoring
    -c, --config <file>              Configuration file
    -t                               Test configuration and exit
    -sl,--signal <signal>[=<pid>]    Send signal to natsws process (ldm, stop, quit, term, reopen, reload)
                                     <pid> can be either a PID (e.g. 1) or the path to a PID file (e.g. /var/run/natsws.pid)
        --client_advertise <string>  Client URL to advertise to other servers
        --ports_file_dir <dir>       Creates a ports file in the specified directory (<executable_name>_<pid>.ports).
        --dump-config [--positions] <file>
                                     Print the parsed configuration file as typed JSON and exit

Logging Options:
    -l, --log <file>                 File to redirect log output
    -T, --logtime                    Timestamp log entries (default: true)
    -D, --debug                      Enable debugging output
    -V, --trace                      Trace the raw protocol
    -VV                              Verbose trace (same as -V: natsws has no system account)
    -DV                              Debug and trace
    -DVV                             Debug and verbose trace
        --max_traced_msg_len <len>   Maximum printable length for traced messages (default: unlimited)
        --log_format <format>        Log line format: text (nats-server's) or json, one object per line (default: text)

JetStream Options (natsws has no JetStream):
    -js, --jetstream                 Warns that JetStream is not available
    -sd, --store_dir <dir>           Keeps MQTT state in <dir>/mqtt across restarts

Authorization Options:
        --user <user>                User required for connections
        --pass <password>            Password required for connections
        --auth <token>               Authorization token required for connections

TLS Options:
        --tls                        Enable TLS, do not verify clients (default: false)
        --tlscert <file>             Server certificate file
        --tlskey <file>              Private key for server certificate
        --tlsverify                  Enable TLS, verify client certificates
        --tlscacert <file>           Client certificate CA for verification

Common Options:
    -h, --help                       Show this message
    -v, --version                    Show version
        --help_tls                   TLS help
";

/// The `--help_tls` text.
pub(crate) const TLS_USAGE: &str = "
TLS configuration is specified in the tls section of a configuration file:

e.g.

    tls {
        cert_file:      \"./certs/server-cert.pem\"
        key_file:       \"./certs/server-key.pem\"
        ca_file:        \"./certs/ca.pem\"
        verify:         true
    }

natsws uses rustls with the ring provider: TLS 1.2 and 1.3 with its default cipher suites.
The same block inside `websocket { }` configures wss://.
";

#[cfg(test)]
mod tests {
    use super::*;

    fn check(args: &[&str], expect: Result<Cli, CliError>) {
        assert_eq!(Cli::parse(args.iter().copied()), expect);
    }

    #[test]
    fn dashes_values_and_overrides() {
        check(
            &[
                "-p",
                "4223",
                "--port=-1",
                "-a",
                "127.0.0.2",
                "--http_port",
                "8222",
            ],
            Ok(Cli {
                port: Some(-1),
                host: Some("127.0.0.2".into()),
                http_port: Some(8222),
                ..Cli::default()
            }),
        );
    }

    #[test]
    fn booleans() {
        check(
            &["-DV", "-T=false", "--tls"],
            Ok(Cli {
                debug: Some(true),
                trace: Some(true),
                logtime: Some(false),
                tls: Some(true),
                ..Cli::default()
            }),
        );
        check(
            &["-D=maybe"],
            Err(CliError::BadValue {
                flag: "D".into(),
                value: "maybe".into(),
                kind: "boolean",
            }),
        );
    }

    #[test]
    fn errors() {
        check(&["-x"], Err(CliError::Unknown("x".into())));
        check(&["--nope=1"], Err(CliError::Unknown("nope".into())));
        check(&["-p"], Err(CliError::MissingValue("p".into())));
        check(
            &["-p", "abc"],
            Err(CliError::BadValue {
                flag: "p".into(),
                value: "abc".into(),
                kind: "",
            }),
        );
        assert_eq!(
            CliError::Unknown("x".into()).to_string(),
            "flag provided but not defined: -x"
        );
        // Go's flag package words for an int and a bool flag.
        assert_eq!(
            Cli::parse(["-p", "abc"]).map_err(|e| e.to_string()),
            Err("invalid value \"abc\" for flag -p: parse error".to_owned())
        );
        assert_eq!(
            Cli::parse(["-D=maybe"]).map_err(|e| e.to_string()),
            Err("invalid boolean value \"maybe\" for -D: parse error".to_owned())
        );
    }

    #[test]
    fn positional_stops_parsing() {
        check(
            &["-D", "version", "-p", "1"],
            Ok(Cli {
                debug: Some(true),
                args: vec!["version".into(), "-p".into(), "1".into()],
                ..Cli::default()
            }),
        );
        check(
            &["--dump-config", "--positions", "a.conf"],
            Ok(Cli {
                dump_config: true,
                dump_positions: true,
                args: vec!["a.conf".into()],
                ..Cli::default()
            }),
        );
    }

    #[test]
    fn log_format() {
        check(
            &["--log_format", "json", "-DV"],
            Ok(Cli {
                log_format: Some(LogFormat::Json),
                debug: Some(true),
                trace: Some(true),
                ..Cli::default()
            }),
        );
        check(
            &["--log_format=text"],
            Ok(Cli {
                log_format: Some(LogFormat::Text),
                ..Cli::default()
            }),
        );
        check(
            &["--log_format=xml"],
            Err(CliError::BadValue {
                flag: "log_format".into(),
                value: "xml".into(),
                kind: "",
            }),
        );
    }

    #[test]
    fn go_int_bases() {
        assert_eq!(parse_int("0x10"), Some(16));
        assert_eq!(parse_int("010"), Some(8));
        assert_eq!(parse_int("-1"), Some(-1));
        assert_eq!(parse_int("1e3"), None);
    }
}
