//! Connections natsws dials out, the parts without I/O: the URLs a leaf remote dials in turn
//! and the backoff (with jitter) between attempts. The loop side (name resolution on a
//! thread, the non-blocking connect, the TLS client, reconnecting) is `server::link`; the
//! leaf protocol itself is the broker's (`broker::Broker::register_leaf`).
//!
//! A link's life: `connecting` (resolve, then TCP connect) → `handshaking` (the hub's INFO,
//! TLS when the URL or the hub asks for it, CONNECT, the INFO that answers it) →
//! `established` → `closed` → retry after backoff with the next URL.

use std::fmt;
use std::time::Duration;

/// First wait after a failed or closed connection.
const BACKOFF_BASE: Duration = Duration::from_millis(100);

/// The transport a URL asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scheme {
    /// `nats://` or `nats-leaf://`: plain TCP (TLS if the hub asks for it).
    Nats,
    /// `tls://`: TLS, started after the hub's INFO as nats-server expects.
    Tls,
    /// `ws://`: a WebSocket upgrade to the hub's websocket port (path `/leafnode`).
    Ws,
    /// `wss://`: TLS first, then the WebSocket upgrade.
    Wss,
}

impl Scheme {
    /// WebSocket (`ws://` or `wss://`).
    pub(crate) fn is_websocket(self) -> bool {
        matches!(self, Self::Ws | Self::Wss)
    }
}

/// One URL of a remote (port 7422 when left out, as nats-server's leafnode default).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DialUrl {
    pub(crate) scheme: Scheme,
    pub(crate) host: String,
    pub(crate) port: u16,
    /// User name from the URL; never logged.
    pub(crate) user: Option<String>,
    /// Password from the URL; never logged.
    pub(crate) password: Option<String>,
}

impl DialUrl {
    /// The URL natsconf parsed.
    pub(crate) fn from_leaf(url: &natsconf::options::LeafUrl) -> Self {
        Self {
            scheme: match url.scheme.as_str() {
                "tls" => Scheme::Tls,
                "ws" => Scheme::Ws,
                "wss" => Scheme::Wss,
                _ => Scheme::Nats,
            },
            host: url.host.clone(),
            port: url.port,
            user: url.username.clone().filter(|u| !u.is_empty()),
            password: url.password.clone(),
        }
    }

    /// `host:port`, as nats-server names a remote in its logs.
    pub(crate) fn host_port(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

impl fmt::Display for DialUrl {
    /// The URL without its credentials.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = match self.scheme {
            Scheme::Nats => "nats",
            Scheme::Tls => "tls",
            Scheme::Ws => "ws",
            Scheme::Wss => "wss",
        };
        write!(f, "{scheme}://{}", self.host_port())
    }
}

/// The URLs of a remote, dialed in turn: each attempt takes the next one.
#[derive(Debug, Clone)]
pub(crate) struct Urls {
    list: Vec<DialUrl>,
    next: usize,
}

impl Urls {
    /// The URLs in the order given; at least one.
    pub(crate) fn new(list: Vec<DialUrl>) -> Result<Self, String> {
        if list.is_empty() {
            return Err("no URL to dial".to_owned());
        }
        Ok(Self { list, next: 0 })
    }

    /// Rotates the list by `by` places (nats-server shuffles a remote's URLs unless
    /// `no_randomize`; one random rotation spreads many edges over a hub cluster alike).
    pub(crate) fn rotate_start(&mut self, by: usize) {
        self.next = by % self.list.len().max(1);
    }

    /// The URL to dial next; the one after it comes next time.
    pub(crate) fn rotate(&mut self) -> DialUrl {
        let idx = self.next % self.list.len().max(1);
        self.next = idx + 1;
        self.list.get(idx).cloned().unwrap_or_else(|| DialUrl {
            scheme: Scheme::Nats,
            host: "127.0.0.1".to_owned(),
            port: 7422,
            user: None,
            password: None,
        })
    }
}

/// Exponential backoff between attempts, with jitter so that many edges do not redial in
/// step: the n-th wait in a row is uniformly in [d/2, d] for d = min(base · 2ⁿ, max), where
/// `max` is the remote's reconnect interval.
#[derive(Debug, Clone)]
pub(crate) struct Backoff {
    failures: u32,
    max: Duration,
}

impl Backoff {
    /// Waits grow to `max` (at least the base).
    pub(crate) fn new(max: Duration) -> Self {
        Self {
            failures: 0,
            max: max.max(BACKOFF_BASE),
        }
    }

    /// The wait before the next attempt; `jitter` is a random number.
    pub(crate) fn next_delay(&mut self, jitter: u16) -> Duration {
        let exp = BACKOFF_BASE.saturating_mul(1 << self.failures.min(16));
        let ceiling = exp.min(self.max);
        self.failures = self.failures.saturating_add(1);
        let frac = f64::from(jitter) / f64::from(u16::MAX);
        ceiling.mul_f64(0.5 + frac / 2.0)
    }

    /// A connection was established: the next wait starts from the base again.
    pub(crate) fn reset(&mut self) {
        self.failures = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(host: &str, port: u16) -> DialUrl {
        DialUrl {
            scheme: Scheme::Nats,
            host: host.to_owned(),
            port,
            user: Some("u".to_owned()),
            password: Some("secret".to_owned()),
        }
    }

    #[test]
    fn urls_rotate_and_hide_credentials() {
        let mut urls = Urls::new(vec![url("a", 1), url("::1", 2), url("b", 7422)]).unwrap();
        assert_eq!(urls.rotate().to_string(), "nats://a:1");
        assert_eq!(urls.rotate().to_string(), "nats://[::1]:2");
        assert_eq!(urls.rotate().host_port(), "b:7422");
        assert_eq!(urls.rotate().to_string(), "nats://a:1");
        urls.rotate_start(5);
        assert_eq!(urls.rotate().to_string(), "nats://b:7422");
        assert!(Urls::new(Vec::new()).is_err());
    }

    #[test]
    fn backoff_grows_to_the_reconnect_interval_with_jitter() {
        let max = Duration::from_secs(2);
        let mut b = Backoff::new(max);
        assert_eq!(b.next_delay(0), BACKOFF_BASE / 2);
        assert_eq!(b.next_delay(u16::MAX), BACKOFF_BASE * 2);
        let waits: Vec<Duration> = (0..40).map(|_| b.next_delay(u16::MAX)).collect();
        assert!(waits.windows(2).all(|w| w[0] <= w[1]), "{waits:?}");
        assert_eq!(waits.last(), Some(&max));
        // At the ceiling, jitter spreads the wait over its upper half.
        assert_eq!(b.next_delay(0), max / 2);
        b.reset();
        assert_eq!(b.next_delay(u16::MAX), BACKOFF_BASE);
    }
}
