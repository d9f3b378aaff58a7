//! The small part of Go's `net/url` the options need: absolute `scheme://[user@]host[:port]…`
//! URLs for leafnode remotes and WebSocket allowed origins, with Go's error texts for the
//! failures configs actually hit (`invalid port ":url" after host`, `missing protocol scheme`,
//! `first path segment in URL cannot contain colon`, bad `%` escapes).

use gotext::quote;

/// A parsed absolute URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Url {
    /// Lower-cased scheme; empty when the text has none.
    pub(crate) scheme: String,
    /// Decoded user name, when there is a userinfo part.
    pub(crate) username: Option<String>,
    /// Decoded password, when the userinfo has a `:`.
    pub(crate) password: Option<String>,
    /// Host without brackets (IPv6) and without port.
    pub(crate) host: String,
    /// The port text after `:` (may be empty).
    pub(crate) port: Option<String>,
    /// Whether the text had an authority (`//`).
    pub(crate) has_authority: bool,
}

fn unescape(text: &str) -> Result<String, String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok());
            let Some(value) = hex else {
                let bad: String = text.get(i..).unwrap_or_default().chars().take(3).collect();
                return Err(format!("invalid URL escape {}", quote(&bad)));
            };
            out.push(value);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "invalid UTF-8 in URL escape".to_owned())
}

fn valid_optional_port(port: &str) -> bool {
    match port.strip_prefix(':') {
        None => port.is_empty(),
        Some(digits) => digits.bytes().all(|b| b.is_ascii_digit()),
    }
}

/// `url.Parse`, reduced to what natsws uses. The error is Go's whole message:
/// `parse "<url>": <reason>`.
pub(crate) fn parse(raw: &str) -> Result<Url, String> {
    let fail = |reason: String| format!("parse {}: {reason}", quote(raw));
    if raw.bytes().any(|b| b < 0x20 || b == 0x7f) {
        return Err(fail("net/url: invalid control character in URL".to_owned()));
    }
    let without_fragment = raw.split('#').next().unwrap_or_default();
    let (scheme, rest) = split_scheme(without_fragment).map_err(fail)?;
    let rest = rest.split('?').next().unwrap_or_default();
    let mut url = Url {
        scheme: scheme.to_lowercase(),
        username: None,
        password: None,
        host: String::new(),
        port: None,
        has_authority: false,
    };
    let Some(after) = rest.strip_prefix("//") else {
        // No authority: an opaque or path-only URL.
        if scheme.is_empty() {
            let first_segment = rest.split('/').next().unwrap_or_default();
            if first_segment.contains(':') {
                return Err(fail(
                    "first path segment in URL cannot contain colon".to_owned(),
                ));
            }
        }
        return Ok(url);
    };
    url.has_authority = true;
    let authority_end = after.find('/').unwrap_or(after.len());
    let authority = after.get(..authority_end).unwrap_or_default();
    let host_port = match authority.rfind('@') {
        Some(at) => {
            let userinfo = authority.get(..at).unwrap_or_default();
            let (user, pass) = match userinfo.split_once(':') {
                Some((u, p)) => (u, Some(p)),
                None => (userinfo, None),
            };
            url.username = Some(unescape(user).map_err(fail)?);
            url.password = match pass {
                Some(p) => Some(unescape(p).map_err(fail)?),
                None => None,
            };
            authority.get(at + 1..).unwrap_or_default()
        }
        None => authority,
    };
    if let Some(inner) = host_port.strip_prefix('[') {
        let Some(close) = inner.find(']') else {
            return Err(fail("missing ']' in host".to_owned()));
        };
        let port_part = inner.get(close + 1..).unwrap_or_default();
        if !valid_optional_port(port_part) {
            return Err(fail(format!(
                "invalid port {} after host",
                quote(port_part)
            )));
        }
        url.host = inner.get(..close).unwrap_or_default().to_owned();
        url.port = port_part.strip_prefix(':').map(str::to_owned);
    } else {
        match host_port.rfind(':') {
            Some(colon) => {
                let port_part = host_port.get(colon..).unwrap_or_default();
                if !valid_optional_port(port_part) {
                    return Err(fail(format!(
                        "invalid port {} after host",
                        quote(port_part)
                    )));
                }
                url.host = unescape(host_port.get(..colon).unwrap_or_default()).map_err(fail)?;
                url.port = port_part.strip_prefix(':').map(str::to_owned);
            }
            None => url.host = unescape(host_port).map_err(fail)?,
        }
    }
    Ok(url)
}

/// `getScheme`.
fn split_scheme(raw: &str) -> Result<(&str, &str), String> {
    for (i, c) in raw.char_indices() {
        match c {
            'a'..='z' | 'A'..='Z' => {}
            '0'..='9' | '+' | '-' | '.' if i > 0 => {}
            ':' => {
                if i == 0 {
                    return Err("missing protocol scheme".to_owned());
                }
                return Ok((
                    raw.get(..i).unwrap_or_default(),
                    raw.get(i + 1..).unwrap_or_default(),
                ));
            }
            _ => return Ok(("", raw)),
        }
    }
    Ok(("", raw))
}

/// One WebSocket allowed origin, parsed strictly (as newer nats-server versions do):
/// an absolute `http` or `https` URL with a host; the port defaults to 80 or 443.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowedOrigin {
    /// `http` or `https`.
    pub scheme: String,
    /// Lower-cased host (IPv6 without brackets).
    pub host: String,
    /// Port, defaulted from the scheme.
    pub port: u16,
}

impl AllowedOrigin {
    /// Parses one `allowed_origins` entry; the error is the start-up error text.
    ///
    /// # Errors
    /// `unable to parse allowed origin: parse "…": …` when Go's `url.Parse` fails, and
    /// `unable to parse allowed origin "…": …` when the entry is not an absolute http(s) URL
    /// with a host.
    pub fn parse(entry: &str) -> Result<Self, String> {
        let url = parse(entry).map_err(|err| format!("unable to parse allowed origin: {err}"))?;
        let strict =
            |reason: &str| format!("unable to parse allowed origin {}: {reason}", quote(entry));
        if !(url.scheme == "http" || url.scheme == "https") || !url.has_authority {
            return Err(strict(
                "allowed origins must be absolute URLs with http or https scheme",
            ));
        }
        if url.host.is_empty() {
            return Err(strict("host is required"));
        }
        let port = match url.port.as_deref() {
            None | Some("") => {
                if url.scheme == "https" {
                    443
                } else {
                    80
                }
            }
            Some(text) => text
                .parse::<u16>()
                .map_err(|_| strict(&format!("invalid port {}", quote(text))))?,
        };
        Ok(Self {
            scheme: url.scheme,
            host: url.host.to_lowercase(),
            port,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allowed_origins() {
        let ok = |s: &str, scheme: &str, host: &str, port: u16| {
            assert_eq!(
                AllowedOrigin::parse(s),
                Ok(AllowedOrigin {
                    scheme: scheme.to_owned(),
                    host: host.to_owned(),
                    port
                }),
                "{s}"
            );
        };
        ok("https://host.com/", "https", "host.com", 443);
        ok("http://Host.COM", "http", "host.com", 80);
        ok("HTTP://x:8080", "http", "x", 8080);
        ok("http://[::1]:81", "http", "::1", 81);
        ok("http://user@x", "http", "x", 80);
        let err =
            |s: &str, want: &str| assert_eq!(AllowedOrigin::parse(s), Err(want.to_owned()), "{s}");
        err(
            "http://this:is:bad:url",
            "unable to parse allowed origin: parse \"http://this:is:bad:url\": invalid port \":url\" after host",
        );
        err(
            "@@@://host.com/",
            "unable to parse allowed origin: parse \"@@@://host.com/\": first path segment in URL cannot contain colon",
        );
        err(
            ":foo",
            "unable to parse allowed origin: parse \":foo\": missing protocol scheme",
        );
        err(
            "example.com",
            "unable to parse allowed origin \"example.com\": allowed origins must be absolute URLs with http or https scheme",
        );
        err(
            "ftp://x.com",
            "unable to parse allowed origin \"ftp://x.com\": allowed origins must be absolute URLs with http or https scheme",
        );
        err(
            "http:x.com",
            "unable to parse allowed origin \"http:x.com\": allowed origins must be absolute URLs with http or https scheme",
        );
        err(
            "http://",
            "unable to parse allowed origin \"http://\": host is required",
        );
        err(
            "http://x:99999",
            "unable to parse allowed origin \"http://x:99999\": invalid port \"99999\"",
        );
    }

    #[test]
    fn leaf_like_urls() {
        let url = parse("nats://u%40x:p%3Aw@hub.example:7422/path").unwrap();
        assert_eq!(url.scheme, "nats");
        assert_eq!(url.username.as_deref(), Some("u@x"));
        assert_eq!(url.password.as_deref(), Some("p:w"));
        assert_eq!(url.host, "hub.example");
        assert_eq!(url.port.as_deref(), Some("7422"));
        assert_eq!(
            parse("nats://a%zz@h"),
            Err("parse \"nats://a%zz@h\": invalid URL escape \"%zz\"".to_owned())
        );
        assert_eq!(
            parse("nats://h\n"),
            Err("parse \"nats://h\\n\": net/url: invalid control character in URL".to_owned())
        );
    }
}
