//! Connections natsws dials out, the parts without I/O: the URLs a link dials in turn, the
//! backoff (with jitter) between attempts, and the minimal NATS client session of the test
//! link. The loop side (name resolution on a thread, the non-blocking connect, the TLS client,
//! reconnecting) is `server::link`.
//!
//! A link's life: `connecting` (resolve, then TCP connect) → `handshaking` (the peer's INFO,
//! TLS when the URL asks for it, CONNECT, until the PONG that answers the first PING) →
//! `established` → `closed` → retry after backoff with the next URL. Leaf-node links are
//! meant to replace [`TestSession`] with their own protocol and keep the rest.

use std::fmt;
use std::time::Duration;

use bytes::BytesMut;

/// The longest protocol line the test session accepts from its peer (nats-server's INFO is a
/// few hundred bytes; its `max_control_line` default is 4 KiB).
const MAX_LINE_BYTES: usize = 64 * 1024;

/// First wait after a failed or closed connection.
const BACKOFF_BASE: Duration = Duration::from_millis(100);
/// Longest wait between attempts.
const BACKOFF_MAX: Duration = Duration::from_secs(2);

/// The transport a URL asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scheme {
    /// `nats://`: plain TCP.
    Nats,
    /// `tls://`: TLS, started after the peer's INFO as nats-server expects.
    Tls,
}

/// One URL of a link: `nats://host:port` or `tls://host:port` (port 4222 when left out).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DialUrl {
    pub(crate) scheme: Scheme,
    pub(crate) host: String,
    pub(crate) port: u16,
}

impl DialUrl {
    /// Parses one URL.
    pub(crate) fn parse(url: &str) -> Result<Self, String> {
        let url = url.trim();
        let (scheme, rest) = if let Some(rest) = url.strip_prefix("nats://") {
            (Scheme::Nats, rest)
        } else if let Some(rest) = url.strip_prefix("tls://") {
            (Scheme::Tls, rest)
        } else {
            return Err(format!("{url:?}: the scheme must be nats:// or tls://"));
        };
        let rest = rest.trim_end_matches('/');
        let (host, port) = match rest.strip_prefix('[') {
            // [v6]:port
            Some(v6) => {
                let (host, after) = v6
                    .split_once(']')
                    .ok_or_else(|| format!("{url:?}: unterminated IPv6 address"))?;
                (host, after.strip_prefix(':'))
            }
            None => match rest.rsplit_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (rest, None),
            },
        };
        if host.is_empty() {
            return Err(format!("{url:?}: no host"));
        }
        let port = match port {
            Some(p) => p
                .parse::<u16>()
                .ok()
                .filter(|p| *p != 0)
                .ok_or_else(|| format!("{url:?}: bad port"))?,
            None => 4222,
        };
        Ok(Self {
            scheme,
            host: host.to_owned(),
            port,
        })
    }
}

impl fmt::Display for DialUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = match self.scheme {
            Scheme::Nats => "nats",
            Scheme::Tls => "tls",
        };
        if self.host.contains(':') {
            write!(f, "{scheme}://[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{scheme}://{}:{}", self.host, self.port)
        }
    }
}

/// The URLs of a link, dialed in turn: each attempt takes the next one.
#[derive(Debug, Clone)]
pub(crate) struct Urls {
    list: Vec<DialUrl>,
    next: usize,
}

impl Urls {
    /// Parses a comma-separated list; at least one URL.
    pub(crate) fn parse(list: &str) -> Result<Self, String> {
        let list = list
            .split(',')
            .filter(|u| !u.trim().is_empty())
            .map(DialUrl::parse)
            .collect::<Result<Vec<_>, _>>()?;
        if list.is_empty() {
            return Err("no URL to dial".to_owned());
        }
        Ok(Self { list, next: 0 })
    }

    /// The URL to dial next; the one after it comes next time.
    pub(crate) fn rotate(&mut self) -> DialUrl {
        let idx = self.next % self.list.len().max(1);
        self.next = idx + 1;
        self.list.get(idx).cloned().unwrap_or_else(|| DialUrl {
            scheme: Scheme::Nats,
            host: "127.0.0.1".to_owned(),
            port: 4222,
        })
    }

    /// Whether any URL asks for TLS.
    pub(crate) fn any_tls(&self) -> bool {
        self.list.iter().any(|u| u.scheme == Scheme::Tls)
    }
}

/// Exponential backoff between attempts, with jitter so that many links do not redial in
/// step: the n-th wait in a row is uniformly in [d/2, d] for d = min(base · 2ⁿ, max).
#[derive(Debug, Clone, Default)]
pub(crate) struct Backoff {
    failures: u32,
}

impl Backoff {
    /// The wait before the next attempt; `jitter` is a random number.
    pub(crate) fn next_delay(&mut self, jitter: u16) -> Duration {
        let exp = BACKOFF_BASE.saturating_mul(1 << self.failures.min(16));
        let ceiling = exp.min(BACKOFF_MAX);
        self.failures = self.failures.saturating_add(1);
        let frac = f64::from(jitter) / f64::from(u16::MAX);
        ceiling.mul_f64(0.5 + frac / 2.0)
    }

    /// A connection was established: the next wait starts from the base again.
    pub(crate) fn reset(&mut self) {
        self.failures = 0;
    }
}

/// Where the test session is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Waiting for the peer's INFO.
    AwaitInfo,
    /// TLS is being set up (after INFO).
    Tls,
    /// CONNECT and PING sent; waiting for the PONG.
    AwaitPong,
    /// The peer answered: the link is up.
    Established,
}

/// What the loop must do after [`TestSession::handle_input`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    /// Nothing new.
    None,
    /// Start the TLS client now (the INFO was read), then call [`TestSession::tls_ready`].
    StartTls,
    /// The link is established.
    Established,
}

/// The test link's NATS client session: reads INFO, sends CONNECT and PING, answers PINGs.
/// It is no NATS client library: just enough to prove that a link dialed out works.
#[derive(Debug)]
pub(crate) struct TestSession {
    phase: Phase,
    tls: bool,
}

impl TestSession {
    /// A session over a connection just opened; `tls`: TLS starts after INFO.
    pub(crate) fn new(tls: bool) -> Self {
        Self {
            phase: Phase::AwaitInfo,
            tls,
        }
    }

    pub(crate) fn phase(&self) -> Phase {
        self.phase
    }

    /// Consumes the complete lines of `input` and queues replies in `out`. An `-ERR`, a line
    /// over [`MAX_LINE_BYTES`] or a peer that wants TLS on a `nats://` URL ends the session.
    pub(crate) fn handle_input(
        &mut self,
        input: &mut BytesMut,
        out: &mut BytesMut,
    ) -> Result<Step, String> {
        let mut step = Step::None;
        while self.phase != Phase::Tls {
            let Some(eol) = input.iter().position(|b| *b == b'\n') else {
                if input.len() > MAX_LINE_BYTES {
                    return Err("protocol line too long".to_owned());
                }
                break;
            };
            let line = input.split_to(eol + 1);
            let line = line
                .strip_suffix(b"\r\n")
                .unwrap_or_else(|| line.get(..eol).unwrap_or_default());
            let op = line
                .split(|b| *b == b' ')
                .next()
                .unwrap_or_default()
                .to_ascii_uppercase();
            match (op.as_slice(), self.phase) {
                (b"INFO", Phase::AwaitInfo) => {
                    let text = String::from_utf8_lossy(line);
                    if !self.tls && text.contains("\"tls_required\":true") {
                        return Err("the server requires TLS: dial it with tls://".to_owned());
                    }
                    if self.tls {
                        self.phase = Phase::Tls;
                        return Ok(Step::StartTls);
                    }
                    self.send_connect(out);
                }
                (b"PING", _) => out.extend_from_slice(b"PONG\r\n"),
                (b"PONG", Phase::AwaitPong) => {
                    self.phase = Phase::Established;
                    step = Step::Established;
                }
                (b"-ERR", _) => return Err(String::from_utf8_lossy(line).into_owned()),
                _ => {}
            }
        }
        Ok(step)
    }

    /// The TLS handshake finished: CONNECT goes out over it.
    pub(crate) fn tls_ready(&mut self, out: &mut BytesMut) {
        if self.phase == Phase::Tls {
            self.send_connect(out);
        }
    }

    fn send_connect(&mut self, out: &mut BytesMut) {
        out.extend_from_slice(
            br#"CONNECT {"verbose":false,"pedantic":false,"tls_required":false,"name":"natsws-test-link","lang":"natsws","protocol":1}"#,
        );
        out.extend_from_slice(b"\r\nPING\r\n");
        self.phase = Phase::AwaitPong;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_and_rotate() {
        let mut urls = Urls::parse("nats://a:1, tls://[::1]:2,nats://b").unwrap();
        assert_eq!(urls.rotate().to_string(), "nats://a:1");
        assert_eq!(urls.rotate().to_string(), "tls://[::1]:2");
        assert_eq!(urls.rotate().to_string(), "nats://b:4222");
        assert_eq!(urls.rotate().to_string(), "nats://a:1");
        assert!(urls.any_tls());
        for bad in [
            "",
            "http://a:1",
            "nats://:1",
            "nats://a:0",
            "nats://a:x",
            "tls://[::1",
        ] {
            assert!(Urls::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn backoff_grows_to_the_ceiling_with_jitter() {
        let mut b = Backoff::default();
        assert_eq!(b.next_delay(0), BACKOFF_BASE / 2);
        assert_eq!(b.next_delay(u16::MAX), BACKOFF_BASE * 2);
        let waits: Vec<Duration> = (0..40).map(|_| b.next_delay(u16::MAX)).collect();
        assert!(waits.windows(2).all(|w| w[0] <= w[1]), "{waits:?}");
        assert_eq!(waits.last(), Some(&BACKOFF_MAX));
        // At the ceiling, jitter spreads the wait over its upper half.
        assert_eq!(b.next_delay(0), BACKOFF_MAX / 2);
        b.reset();
        assert_eq!(b.next_delay(u16::MAX), BACKOFF_BASE);
    }

    fn feed(s: &mut TestSession, input: &str) -> (Result<Step, String>, String) {
        let mut input = BytesMut::from(input);
        let mut out = BytesMut::new();
        let res = s.handle_input(&mut input, &mut out);
        (res, String::from_utf8_lossy(&out).into_owned())
    }

    #[test]
    fn plain_session_connects_and_answers_pings() {
        let mut s = TestSession::new(false);
        let (res, out) = feed(&mut s, "INFO {\"server_id\":\"x\"}\r\n");
        assert_eq!(res, Ok(Step::None));
        assert!(
            out.starts_with("CONNECT {") && out.ends_with("\r\nPING\r\n"),
            "{out}"
        );
        assert_eq!(s.phase(), Phase::AwaitPong);
        let (res, out) = feed(&mut s, "PING\r\nPONG\r\n");
        assert_eq!((res, out.as_str()), (Ok(Step::Established), "PONG\r\n"));
        assert_eq!(
            feed(&mut s, "-ERR 'Stale Connection'\r\n").0,
            Err("-ERR 'Stale Connection'".to_owned())
        );
    }

    #[test]
    fn tls_session_waits_for_the_handshake() {
        let mut s = TestSession::new(true);
        let (res, out) = feed(&mut s, "INFO {\"tls_required\":true}\r\n");
        assert_eq!((res, out.as_str()), (Ok(Step::StartTls), ""));
        let mut out = BytesMut::new();
        s.tls_ready(&mut out);
        assert!(out.starts_with(b"CONNECT "));
        // A plain URL to a TLS server is refused with a reason.
        let mut plain = TestSession::new(false);
        assert!(
            feed(&mut plain, "INFO {\"tls_required\":true}\r\n")
                .0
                .is_err()
        );
        // A peer that never ends its line is cut off.
        let mut s = TestSession::new(false);
        assert!(feed(&mut s, &"x".repeat(MAX_LINE_BYTES + 1)).0.is_err());
    }
}
