//! The server's upgrade policy: validated once when the configuration is loaded, then shared by
//! every connection.
//!
//! Origin checking follows `server/websocket.go` `checkOrigin` with the hardening of newer
//! nats-server versions: `allowed_origins` entries must be absolute `http`/`https` URLs with a
//! host (an entry such as `example.com` is a configuration error, not a silently skipped entry
//! that opens the list to every origin), several entries per host are kept, and `same_origin`
//! also compares the scheme with the listener's transport.

use std::fmt;

use gotext::quote;

use crate::Limits;
use crate::head::{HeaderPair, first};
use crate::uri::{host_and_port, parse_request_uri};

/// The websocket options that shape the upgrade, as the configuration file gives them.
///
/// Turn it into a [`Policy`] with [`Policy::new`], which validates every field.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Options {
    /// `same_origin`: the Origin's scheme, host and port must be those of the request.
    pub same_origin: bool,
    /// `allowed_origins`: the Origin must be one of these absolute `http`/`https` URLs.
    pub allowed_origins: Vec<String>,
    /// `compression`: accept `permessage-deflate` when the client offers it.
    pub compression: bool,
    /// `jwt_cookie`: the cookie whose value is the user JWT.
    pub jwt_cookie: Option<String>,
    /// `user_cookie`: the cookie whose value fills CONNECT `user`.
    pub user_cookie: Option<String>,
    /// `pass_cookie`: the cookie whose value fills CONNECT `pass`.
    pub pass_cookie: Option<String>,
    /// `token_cookie`: the cookie whose value fills CONNECT `auth_token`.
    pub token_cookie: Option<String>,
    /// `headers`: extra headers added, in this order, to every `101` response.
    pub headers: Vec<(String, String)>,
    /// Answer `/mqtt...` paths with 404 (newer nats-server when MQTT is off) instead of
    /// upgrading them and reporting [`PathKind::Mqtt`](crate::PathKind::Mqtt) (v2.9.10).
    pub reject_mqtt: bool,
    /// Size limits for the request.
    pub limits: Limits,
}

/// A configuration error found by [`Policy::new`] or [`AllowedOrigin::parse`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PolicyError {
    /// An allowed origin does not parse as a URL.
    OriginUnparsable {
        /// The configured entry.
        entry: String,
        /// Go's parser error text.
        detail: String,
    },
    /// An allowed origin is not an absolute `http` or `https` URL.
    OriginNotAbsolute {
        /// The configured entry.
        entry: String,
    },
    /// An allowed origin has no host.
    OriginWithoutHost {
        /// The configured entry.
        entry: String,
    },
    /// A configured extra header uses a name the upgrade itself controls.
    ReservedHeader {
        /// The configured name.
        name: String,
    },
    /// A configured extra header starts with `Sec-WebSocket-`.
    SecWebSocketHeader {
        /// The configured name.
        name: String,
    },
    /// A configured extra header name is not an HTTP token, or its value has control bytes.
    InvalidHeader {
        /// The configured name.
        name: String,
    },
    /// A cookie name is empty or not an HTTP token.
    InvalidCookieName {
        /// The option (`jwt_cookie`, `user_cookie`, `pass_cookie` or `token_cookie`).
        option: &'static str,
        /// The configured name.
        name: String,
    },
    /// A limit is zero.
    ZeroLimit {
        /// The field of [`Limits`].
        field: &'static str,
    },
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::OriginUnparsable { entry, detail } => write!(
                f,
                "unable to parse allowed origin: parse {}: {detail}",
                quote(entry)
            ),
            Self::OriginNotAbsolute { entry } => write!(
                f,
                "unable to parse allowed origin {}: allowed origins must be absolute URLs with http or https scheme",
                quote(entry)
            ),
            Self::OriginWithoutHost { entry } => write!(
                f,
                "unable to parse allowed origin {}: host is required",
                quote(entry)
            ),
            Self::ReservedHeader { name } => {
                write!(f, "websocket: invalid header {} not allowed", quote(name))
            }
            Self::SecWebSocketHeader { name } => write!(
                f,
                "websocket: invalid header {}, \"Sec-WebSocket-\" prefix not allowed",
                quote(name)
            ),
            Self::InvalidHeader { name } => write!(
                f,
                "websocket: invalid header {}: name must be a token and the value free of control characters",
                quote(name)
            ),
            Self::InvalidCookieName { option, name } => write!(
                f,
                "websocket: invalid {option} {}: cookie names must be non-empty tokens",
                quote(name)
            ),
            Self::ZeroLimit { field } => write!(f, "websocket: limit {field} must not be zero"),
        }
    }
}

impl std::error::Error for PolicyError {}

/// One validated `allowed_origins` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowedOrigin {
    scheme: String,
    host: String,
    port: String,
}

impl AllowedOrigin {
    /// Validates one configured entry: it must be an absolute `http` or `https` URL with a host.
    /// The port defaults to 80 or 443 by scheme; path, query and user info are ignored.
    pub fn parse(entry: &str) -> Result<Self, PolicyError> {
        let uri = parse_request_uri(entry).map_err(|detail| PolicyError::OriginUnparsable {
            entry: entry.to_owned(),
            detail,
        })?;
        if uri.scheme != "http" && uri.scheme != "https" {
            return Err(PolicyError::OriginNotAbsolute {
                entry: entry.to_owned(),
            });
        }
        if uri.host.is_empty() {
            return Err(PolicyError::OriginWithoutHost {
                entry: entry.to_owned(),
            });
        }
        let (host, port) = host_and_port(uri.scheme == "https", &uri.host).map_err(|detail| {
            PolicyError::OriginUnparsable {
                entry: entry.to_owned(),
                detail,
            }
        })?;
        if host.is_empty() {
            return Err(PolicyError::OriginWithoutHost {
                entry: entry.to_owned(),
            });
        }
        Ok(Self {
            scheme: uri.scheme,
            host,
            port,
        })
    }

    /// The scheme (`http` or `https`).
    #[must_use]
    pub fn scheme(&self) -> &str {
        &self.scheme
    }

    /// The host, lower-cased.
    #[must_use]
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port, explicit or defaulted from the scheme.
    #[must_use]
    pub fn port(&self) -> &str {
        &self.port
    }
}

/// The validated upgrade policy of one websocket listener. Build it once with [`Policy::new`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub(crate) same_origin: bool,
    pub(crate) allowed_origins: Vec<AllowedOrigin>,
    pub(crate) compression: bool,
    pub(crate) cookie_names: CookieNames,
    /// The configured extra headers, already rendered as `Name: value\r\n` lines.
    pub(crate) extra_headers: Vec<u8>,
    pub(crate) reject_mqtt: bool,
    pub(crate) limits: Limits,
}

/// The configured cookie names.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct CookieNames {
    pub(crate) jwt: Option<String>,
    pub(crate) user: Option<String>,
    pub(crate) pass: Option<String>,
    pub(crate) token: Option<String>,
}

/// Header names the `headers` option may not set (newer nats-server `validateWebsocketOptions`).
const RESERVED_HEADERS: [&str; 5] = [
    "Host",
    "Content-Length",
    "Connection",
    "Upgrade",
    "Nats-No-Masking",
];

impl Policy {
    /// Validates `options`. The first problem found is returned.
    pub fn new(options: &Options) -> Result<Self, PolicyError> {
        if options.limits.max_head_bytes == 0 {
            return Err(PolicyError::ZeroLimit {
                field: "max_head_bytes",
            });
        }
        let allowed_origins = options
            .allowed_origins
            .iter()
            .map(|entry| AllowedOrigin::parse(entry))
            .collect::<Result<Vec<_>, _>>()?;
        let cookie = |option: &'static str, name: &Option<String>| match name {
            Some(name) if name.is_empty() => Ok(None),
            Some(name) if !is_token(name.as_bytes()) => Err(PolicyError::InvalidCookieName {
                option,
                name: name.clone(),
            }),
            other => Ok(other.clone()),
        };
        let cookie_names = CookieNames {
            jwt: cookie("jwt_cookie", &options.jwt_cookie)?,
            user: cookie("user_cookie", &options.user_cookie)?,
            pass: cookie("pass_cookie", &options.pass_cookie)?,
            token: cookie("token_cookie", &options.token_cookie)?,
        };
        let mut extra_headers = Vec::new();
        for (name, value) in &options.headers {
            validate_extra_header(name, value)?;
            extra_headers.extend_from_slice(name.as_bytes());
            extra_headers.extend_from_slice(b": ");
            extra_headers.extend_from_slice(value.as_bytes());
            extra_headers.extend_from_slice(b"\r\n");
        }
        Ok(Self {
            same_origin: options.same_origin,
            allowed_origins,
            compression: options.compression,
            cookie_names,
            extra_headers,
            reject_mqtt: options.reject_mqtt,
            limits: options.limits,
        })
    }

    /// The limits requests are read with.
    #[must_use]
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The validated `allowed_origins` entries.
    #[must_use]
    pub fn allowed_origins(&self) -> &[AllowedOrigin] {
        &self.allowed_origins
    }

    /// Step 7 of the validation: the Origin check (`checkOrigin`, hardened as newer versions do).
    ///
    /// `request_host` is the request's host (`Host` header or absolute-URI authority) and `tls`
    /// says whether the request arrived over TLS. The error is the reference's detail text.
    pub(crate) fn check_origin(
        &self,
        headers: &[HeaderPair<'_>],
        request_host: &str,
        tls: bool,
    ) -> Result<(), String> {
        if !self.same_origin && self.allowed_origins.is_empty() {
            return Ok(());
        }
        let mut origin = first(headers, "Origin");
        if origin.is_empty() {
            origin = first(headers, "Sec-WebSocket-Origin");
        }
        // A request without Origin comes from a non-browser client (RFC 6455 §1.6).
        if origin.is_empty() {
            return Ok(());
        }
        let Ok(origin_text) = std::str::from_utf8(origin) else {
            return Err(format!("parse {}: invalid URI for request", quote(origin)));
        };
        let uri = parse_request_uri(origin_text)
            .map_err(|detail| format!("parse {}: {detail}", quote(origin_text)))?;
        let (origin_host, origin_port) = host_and_port(uri.scheme == "https", &uri.host)?;
        if self.same_origin {
            let (host, port) = host_and_port(tls, request_host)?;
            let scheme = if tls { "https" } else { "http" };
            if origin_host != host || origin_port != port || uri.scheme != scheme {
                return Err("not same origin".to_owned());
            }
        }
        if !self.allowed_origins.is_empty()
            && !self.allowed_origins.iter().any(|allowed| {
                allowed.host == origin_host
                    && allowed.scheme == uri.scheme
                    && allowed.port == origin_port
            })
        {
            return Err("not in the allowed list".to_owned());
        }
        Ok(())
    }
}

fn validate_extra_header(name: &str, value: &str) -> Result<(), PolicyError> {
    if RESERVED_HEADERS
        .iter()
        .any(|reserved| reserved.eq_ignore_ascii_case(name))
    {
        return Err(PolicyError::ReservedHeader {
            name: name.to_owned(),
        });
    }
    let prefix = "Sec-WebSocket-";
    if name
        .get(..prefix.len())
        .is_some_and(|start| start.eq_ignore_ascii_case(prefix))
    {
        return Err(PolicyError::SecWebSocketHeader {
            name: name.to_owned(),
        });
    }
    let value_ok = value
        .bytes()
        .all(|byte| byte == b'\t' || (byte >= 0x20 && byte != 0x7f));
    if !is_token(name.as_bytes()) || !value_ok {
        return Err(PolicyError::InvalidHeader {
            name: name.to_owned(),
        });
    }
    Ok(())
}

/// True for a non-empty RFC 9110 token.
pub(crate) fn is_token(bytes: &[u8]) -> bool {
    !bytes.is_empty()
        && bytes.iter().all(|byte| {
            byte.is_ascii_alphanumeric()
                || matches!(
                    byte,
                    b'!' | b'#'
                        | b'$'
                        | b'%'
                        | b'&'
                        | b'\''
                        | b'*'
                        | b'+'
                        | b'-'
                        | b'.'
                        | b'^'
                        | b'_'
                        | b'`'
                        | b'|'
                        | b'~'
                )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_entry(entry: &str, expect: Result<(&str, &str, &str), &str>) {
        let got = AllowedOrigin::parse(entry);
        match (&got, expect) {
            (Ok(origin), Ok((scheme, host, port))) => {
                assert_eq!(
                    (origin.scheme(), origin.host(), origin.port()),
                    (scheme, host, port)
                );
            }
            (Err(error), Err(text)) => assert_eq!(error.to_string(), text, "{entry}"),
            _ => panic!("{entry}: got {got:?}"),
        }
    }

    #[test]
    fn allowed_origin_entries() {
        check_entry("http://host1.com", Ok(("http", "host1.com", "80")));
        check_entry("https://example.com", Ok(("https", "example.com", "443")));
        check_entry("HTTP://UPPER.com", Ok(("http", "upper.com", "80")));
        check_entry("https://h:8443/path?q", Ok(("https", "h", "8443")));
        check_entry(
            "example.com",
            Err("unable to parse allowed origin: parse \"example.com\": invalid URI for request"),
        );
        check_entry(
            "ws://example.com",
            Err(
                "unable to parse allowed origin \"ws://example.com\": allowed origins must be absolute URLs with http or https scheme",
            ),
        );
        check_entry(
            "http:example.com",
            Err("unable to parse allowed origin \"http:example.com\": host is required"),
        );
        check_entry(
            "http:///path",
            Err("unable to parse allowed origin \"http:///path\": host is required"),
        );
        check_entry(
            "http://this:is:bad:url",
            Err(
                "unable to parse allowed origin: parse \"http://this:is:bad:url\": invalid port \":url\" after host",
            ),
        );
        check_entry(
            "@@@://host.com/",
            Err(
                "unable to parse allowed origin: parse \"@@@://host.com/\": invalid URI for request",
            ),
        );
    }

    fn options_with_header(name: &str, value: &str) -> Options {
        Options {
            headers: vec![(name.to_owned(), value.to_owned())],
            ..Options::default()
        }
    }

    #[test]
    fn extra_headers_are_validated() {
        let err = |name: &str, value: &str| {
            Policy::new(&options_with_header(name, value))
                .map(|_| ())
                .map_err(|e| e.to_string())
        };
        assert_eq!(err("X-Custom", "v"), Ok(()));
        assert_eq!(
            err("host", "v"),
            Err("websocket: invalid header \"host\" not allowed".into())
        );
        assert_eq!(
            err("nats-no-masking", "v"),
            Err("websocket: invalid header \"nats-no-masking\" not allowed".into())
        );
        assert_eq!(
            err("sec-websocket-protocol", "v"),
            Err("websocket: invalid header \"sec-websocket-protocol\", \"Sec-WebSocket-\" prefix not allowed".into())
        );
        assert!(err("Bad Name", "v").is_err());
        assert!(err("X-Ok", "a\r\nInjected: 1").is_err());
    }

    #[test]
    fn cookie_names_are_validated() {
        let options = Options {
            jwt_cookie: Some("my jwt".into()),
            ..Options::default()
        };
        assert_eq!(
            Policy::new(&options).map(|_| ()).map_err(|e| e.to_string()),
            Err(
                "websocket: invalid jwt_cookie \"my jwt\": cookie names must be non-empty tokens"
                    .into()
            )
        );
        let options = Options {
            user_cookie: Some(String::new()),
            ..Options::default()
        };
        assert_eq!(Policy::new(&options).map(|p| p.cookie_names.user), Ok(None));
    }

    #[test]
    fn zero_head_limit_is_refused() {
        let options = Options {
            limits: Limits {
                max_head_bytes: 0,
                ..Limits::default()
            },
            ..Options::default()
        };
        assert_eq!(
            Policy::new(&options),
            Err(PolicyError::ZeroLimit {
                field: "max_head_bytes"
            })
        );
    }
}
