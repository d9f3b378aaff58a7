//! Option field helpers shared by the top level and the blocks (listen addresses, ports,
//! durations, timeouts), after nats-server's `server/opts.go`.

use std::time::Duration;

use gotext::{format_duration, quote};

use super::DEFAULT_HOST;
use super::HostPort;
use super::diag::{Ctx, Panic, V};
use super::gostd::{atoi, parse_duration, split_host_port};

/// Checks a configured port: natsws refuses what the reference only fails on when binding.
pub(crate) fn check_port(ctx: &mut Ctx, at: &V<'_>, port: i64) -> Option<i64> {
    if (-1..=65535).contains(&port) {
        Some(port)
    } else {
        ctx.error(at, format!("invalid port {port}"));
        None
    }
}

/// A `port` option: sets `port` when the value is a valid port (an error otherwise).
pub(crate) fn parse_port_into(ctx: &mut Ctx, at: &V<'_>, port: &mut i64) -> Result<(), Panic> {
    let value = at.int()?;
    if let Some(value) = check_port(ctx, at, value) {
        *port = value;
    }
    Ok(())
}

/// A `listen` option: sets `host` (empty when only a port is given) and `port` when the
/// value parses (an error otherwise).
pub(crate) fn parse_listen_into(ctx: &mut Ctx, at: &V<'_>, host: &mut String, port: &mut i64) {
    if let Some((value_host, value_port)) = parse_listen(ctx, at) {
        *host = value_host.unwrap_or_default();
        *port = value_port;
    }
}

/// `parseListen`: a port, or `"host:port"`.
pub(crate) fn parse_listen(ctx: &mut Ctx, at: &V<'_>) -> Option<(Option<String>, i64)> {
    let parsed = match at.value() {
        crate::value::Value::Int(port) => Ok((None, *port)),
        crate::value::Value::Str(_) => match at.string() {
            Ok(text) => match split_host_port(&text) {
                None => Err(format!("could not parse address string {}", quote(&text))),
                Some((host, port)) => match atoi(port) {
                    None => Err(format!("could not parse port {}", quote(port))),
                    Some(port) => Ok((Some(host.to_owned()), port)),
                },
            },
            Err(panic) => {
                ctx.recover::<()>(Err(panic));
                return None;
            }
        },
        _ => Err(format!("expected port or host:port, got {}", at.go_type())),
    };
    match parsed {
        Ok((host, port)) => check_port(ctx, at, port).map(|port| (host, port)),
        Err(message) => {
            ctx.error(at, message);
            None
        }
    }
}

/// `parseDuration`: a Go duration string, or an integer number of seconds with a warning.
/// Returns signed nanoseconds.
pub(crate) fn parse_duration_option(
    ctx: &mut Ctx,
    field: &str,
    at: &V<'_>,
) -> Result<Option<i64>, Panic> {
    if let crate::value::Value::Str(_) = at.value() {
        let text = at.string()?;
        return Ok(match parse_duration(&text) {
            Ok(nanos) => Some(nanos),
            Err(err) => {
                ctx.error(at, format!("error parsing {field}: {err}"));
                None
            }
        });
    }
    let seconds = at.int()?;
    ctx.warning(
        at,
        field,
        format!("{field} should be converted to a duration"),
    );
    Ok(Some(seconds.wrapping_mul(1_000_000_000)))
}

/// Nanoseconds to a `Duration`, refusing negative values (natsws: a negative interval would
/// make timers fire continuously).
pub(crate) fn non_negative(ctx: &mut Ctx, at: &V<'_>, field: &str, nanos: i64) -> Option<i64> {
    if nanos < 0 {
        ctx.error(
            at,
            format!(
                "error parsing {field}: negative duration {}",
                format_duration(nanos)
            ),
        );
        None
    } else {
        Some(nanos)
    }
}

pub(crate) fn nanos_to_duration(nanos: i64) -> Duration {
    Duration::from_nanos(u64::try_from(nanos).unwrap_or(0))
}

/// Float seconds (the reference's `float64` timeouts) to a `Duration`; negative and NaN
/// become zero.
pub(crate) fn seconds_to_duration(seconds: f64) -> Duration {
    Duration::try_from_secs_f64(seconds).unwrap_or(Duration::ZERO)
}

/// An authorization block's `timeout` in float seconds; 0 means not configured.
pub(crate) fn auth_timeout_of(seconds: f64) -> Option<Duration> {
    (seconds != 0.0).then(|| seconds_to_duration(seconds))
}

pub(crate) fn port_of(port: i64) -> u16 {
    // -1 asks for a random port, which binding port 0 gives.
    u16::try_from(port).unwrap_or(0)
}

/// A configured host, or `DEFAULT_HOST` when empty.
pub(crate) fn host_or_default(host: String) -> String {
    if host.is_empty() {
        DEFAULT_HOST.to_owned()
    } else {
        host
    }
}

/// The address of a listener configured with `host` and a nonzero `port`.
pub(crate) fn listener(host: String, port: i64) -> HostPort {
    HostPort {
        host: host_or_default(host),
        port: port_of(port),
    }
}
