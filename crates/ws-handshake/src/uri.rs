//! The small part of Go's `net/url` and `net` that the reference uses on the upgrade path.
//!
//! nats-server parses the request target, the `Origin` header and every `allowed_origins` entry
//! with `url.ParseRequestURI`, and splits hosts with `net.SplitHostPort`. The decisions (accept or
//! reject) must be the same as the reference's, and the error texts end up in our logs, so this
//! module mirrors those functions closely. Every function here is total: no input panics.

use gotext::quote;

/// The parts of a request URI that the handshake needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RequestUri<'a> {
    /// The scheme, lower-cased (Go lower-cases it while parsing). Empty for origin-form targets.
    pub(crate) scheme: String,
    /// The host with its optional port, percent-decoded, as Go's `URL.Host`. Empty when the URI
    /// has no authority.
    pub(crate) host: String,
    /// The raw (still escaped) path, without the query.
    pub(crate) path: &'a str,
}

/// Parses `raw` the way Go's `url.ParseRequestURI` does (the subset the handshake relies on).
///
/// The error is the text Go puts after `parse "<raw>": `.
pub(crate) fn parse_request_uri(raw: &str) -> Result<RequestUri<'_>, String> {
    if raw.bytes().any(|byte| byte < 0x20 || byte == 0x7f) {
        return Err("net/url: invalid control character in URL".to_owned());
    }
    if raw.is_empty() {
        return Err("empty url".to_owned());
    }
    if raw == "*" {
        return Ok(RequestUri {
            scheme: String::new(),
            host: String::new(),
            path: raw,
        });
    }
    let (scheme, rest) = split_scheme(raw)?;
    let scheme = scheme.to_ascii_lowercase();
    let rest = match rest.split_once('?') {
        Some((before, _query)) => before,
        None => rest,
    };
    if !rest.starts_with('/') {
        if !scheme.is_empty() {
            // An opaque URI such as `http:foo`: it has no host and no path.
            return Ok(RequestUri {
                scheme,
                host: String::new(),
                path: "",
            });
        }
        return Err("invalid URI for request".to_owned());
    }
    if !scheme.is_empty()
        && let Some(after) = rest.strip_prefix("//")
    {
        let (authority, path) = match after.find('/') {
            Some(slash) => after.split_at(slash),
            None => (after, ""),
        };
        let host = parse_authority(authority)?;
        return Ok(RequestUri { scheme, host, path });
    }
    Ok(RequestUri {
        scheme,
        host: String::new(),
        path: rest,
    })
}

/// Go's `getScheme`.
fn split_scheme(raw: &str) -> Result<(&str, &str), String> {
    for (idx, byte) in raw.bytes().enumerate() {
        match byte {
            b'a'..=b'z' | b'A'..=b'Z' => {}
            b'0'..=b'9' | b'+' | b'-' | b'.' => {
                if idx == 0 {
                    return Ok(("", raw));
                }
            }
            b':' => {
                if idx == 0 {
                    return Err("missing protocol scheme".to_owned());
                }
                return Ok(raw
                    .split_at_checked(idx)
                    .map_or(("", raw), |(scheme, rest)| {
                        (scheme, rest.get(1..).unwrap_or(""))
                    }));
            }
            _ => return Ok(("", raw)),
        }
    }
    Ok(("", raw))
}

/// Go's `parseAuthority`: drops the user info and parses the host.
fn parse_authority(authority: &str) -> Result<String, String> {
    let host = match authority.rfind('@') {
        Some(at) => {
            let userinfo = authority.get(..at).unwrap_or("");
            if !userinfo.bytes().all(valid_userinfo_byte) {
                return Err("net/url: invalid userinfo".to_owned());
            }
            authority.get(at + 1..).unwrap_or("")
        }
        None => authority,
    };
    parse_host(host)
}

/// Go's `validUserinfo`.
fn valid_userinfo_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric()
        || matches!(
            byte,
            b'-' | b'.'
                | b'_'
                | b':'
                | b'~'
                | b'!'
                | b'$'
                | b'&'
                | b'\''
                | b'('
                | b')'
                | b'*'
                | b'+'
                | b','
                | b';'
                | b'='
                | b'%'
                | b'@'
        )
        || byte >= 0x80
}

/// Go's `parseHost` (without IPv6 zone unescaping, which no browser sends in an Origin).
fn parse_host(host: &str) -> Result<String, String> {
    if host.starts_with('[') {
        let Some(close) = host.rfind(']') else {
            return Err("missing ']' in host".to_owned());
        };
        let colon_port = host.get(close + 1..).unwrap_or("");
        if !valid_optional_port(colon_port) {
            return Err(format!("invalid port {} after host", quote(colon_port)));
        }
    } else if let Some(colon) = host.rfind(':') {
        let colon_port = host.get(colon..).unwrap_or("");
        if !valid_optional_port(colon_port) {
            return Err(format!("invalid port {} after host", quote(colon_port)));
        }
    }
    unescape_host(host)
}

/// Go's `validOptionalPort`: empty, or `:` followed by digits only.
fn valid_optional_port(port: &str) -> bool {
    match port.strip_prefix(':') {
        None => port.is_empty(),
        Some(digits) => digits.bytes().all(|byte| byte.is_ascii_digit()),
    }
}

/// Go's `unescape(s, encodeHost)`.
fn unescape_host(host: &str) -> Result<String, String> {
    let bytes = host.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut idx = 0;
    while let Some(&byte) = bytes.get(idx) {
        if byte == b'%' {
            let escape = bytes.get(idx..idx + 3);
            let value = escape.and_then(|triple| match triple {
                [_, high, low] => Some((hex_value(*high)?, hex_value(*low)?)),
                _ => None,
            });
            let Some((high, low)) = value else {
                let text = host.get(idx..(idx + 3).min(host.len())).unwrap_or("%");
                return Err(format!("invalid URL escape {}", quote(text)));
            };
            // Go only allows escapes of non-ASCII bytes and `%25` in a host.
            if high < 8 && escape != Some(b"%25".as_slice()) {
                let text = host.get(idx..idx + 3).unwrap_or("%");
                return Err(format!("invalid URL escape {}", quote(text)));
            }
            decoded.push(high << 4 | low);
            idx += 3;
            continue;
        }
        if byte < 0x80 && !valid_host_byte(byte) {
            return Err(format!(
                "invalid character {} in host name",
                quote(host.get(idx..=idx).unwrap_or(""))
            ));
        }
        decoded.push(byte);
        idx += 1;
    }
    Ok(String::from_utf8_lossy(&decoded).into_owned())
}

fn hex_value(byte: u8) -> Option<u8> {
    char::from(byte)
        .to_digit(16)
        .and_then(|digit| u8::try_from(digit).ok())
}

/// The ASCII bytes Go's `shouldEscape(c, encodeHost)` lets through unescaped.
fn valid_host_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric()
        || matches!(
            byte,
            b'-' | b'_'
                | b'.'
                | b'~'
                | b'!'
                | b'$'
                | b'&'
                | b'\''
                | b'('
                | b')'
                | b'*'
                | b'+'
                | b','
                | b';'
                | b'='
                | b':'
                | b'['
                | b']'
                | b'<'
                | b'>'
                | b'"'
        )
}

/// nats-server's `wsGetHostAndPort`: splits `host:port`, or uses the default port (443 when
/// `tls`, else 80) when there is none. The host is lower-cased.
///
/// One deliberate difference: a bracketed IPv6 literal without a port (`[::1]`) loses its
/// brackets, so that it compares equal to the same address written with a port (`[::1]:80`).
/// Go keeps the brackets in that case and so never matches them.
pub(crate) fn host_and_port(tls: bool, hostport: &str) -> Result<(String, String), String> {
    match split_host_port(hostport) {
        Ok((host, port)) => Ok((host.to_ascii_lowercase(), port.to_owned())),
        Err(SplitError::MissingPort) => {
            let host = hostport
                .strip_prefix('[')
                .and_then(|inner| inner.strip_suffix(']'))
                .unwrap_or(hostport);
            let port = if tls { "443" } else { "80" };
            Ok((host.to_ascii_lowercase(), port.to_owned()))
        }
        Err(error) => Err(format!("address {hostport}: {}", error.text())),
    }
}

/// The failures of Go's `net.SplitHostPort`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SplitError {
    MissingPort,
    TooManyColons,
    MissingBracket,
    UnexpectedOpen,
    UnexpectedClose,
}

impl SplitError {
    fn text(self) -> &'static str {
        match self {
            Self::MissingPort => "missing port in address",
            Self::TooManyColons => "too many colons in address",
            Self::MissingBracket => "missing ']' in address",
            Self::UnexpectedOpen => "unexpected '[' in address",
            Self::UnexpectedClose => "unexpected ']' in address",
        }
    }
}

/// Go's `net.SplitHostPort`.
pub(crate) fn split_host_port(hostport: &str) -> Result<(&str, &str), SplitError> {
    let Some(last_colon) = hostport.rfind(':') else {
        return Err(SplitError::MissingPort);
    };
    let (host, open_from, close_from);
    if hostport.starts_with('[') {
        let Some(close) = hostport.find(']') else {
            return Err(SplitError::MissingBracket);
        };
        if close + 1 == hostport.len() {
            return Err(SplitError::MissingPort);
        }
        if close + 1 != last_colon {
            if hostport.as_bytes().get(close + 1) == Some(&b':') {
                return Err(SplitError::TooManyColons);
            }
            return Err(SplitError::MissingPort);
        }
        host = hostport.get(1..close).unwrap_or("");
        open_from = 1;
        close_from = close + 1;
    } else {
        host = hostport.get(..last_colon).unwrap_or("");
        if host.contains(':') {
            return Err(SplitError::TooManyColons);
        }
        open_from = 0;
        close_from = 0;
    }
    if hostport
        .get(open_from..)
        .is_some_and(|rest| rest.contains('['))
    {
        return Err(SplitError::UnexpectedOpen);
    }
    if hostport
        .get(close_from..)
        .is_some_and(|rest| rest.contains(']'))
    {
        return Err(SplitError::UnexpectedClose);
    }
    Ok((host, hostport.get(last_colon + 1..).unwrap_or("")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_parse(raw: &str, expect: Result<(&str, &str, &str), &str>) {
        let res = parse_request_uri(raw);
        let got = res
            .as_ref()
            .map(|uri| (uri.scheme.as_str(), uri.host.as_str(), uri.path))
            .map_err(String::as_str);
        assert_eq!(got, expect, "{raw}");
    }

    #[test]
    fn request_uris() {
        check_parse("/", Ok(("", "", "/")));
        check_parse("/leafnode?x=1", Ok(("", "", "/leafnode")));
        check_parse("*", Ok(("", "", "*")));
        check_parse("http://h:1/x", Ok(("http", "h:1", "/x")));
        check_parse("HTTP://Upper.com", Ok(("http", "Upper.com", "")));
        check_parse("https://u:p@h.com/p", Ok(("https", "h.com", "/p")));
        check_parse("http:foo", Ok(("http", "", "")));
        check_parse("//h/p", Ok(("", "", "//h/p")));
        check_parse("null", Err("invalid URI for request"));
        check_parse("@@@://invalid:url:1234", Err("invalid URI for request"));
        check_parse(":x", Err("missing protocol scheme"));
        check_parse("", Err("empty url"));
        check_parse("/a\u{1}", Err("net/url: invalid control character in URL"));
        check_parse(
            "http://this:is:bad:url",
            Err("invalid port \":url\" after host"),
        );
        check_parse("http://[::1", Err("missing ']' in host"));
        check_parse("http://[::1]x", Err("invalid port \"x\" after host"));
        check_parse("http://h%zz", Err("invalid URL escape \"%zz\""));
        check_parse("http://h%41", Err("invalid URL escape \"%41\""));
        check_parse("http://h%25", Ok(("http", "h%", "")));
        check_parse("http://a b", Err("invalid character \" \" in host name"));
        check_parse("http://[::1]:8080/", Ok(("http", "[::1]:8080", "/")));
    }

    fn check_split(hostport: &str, expect: Result<(&str, &str), SplitError>) {
        assert_eq!(split_host_port(hostport), expect, "{hostport}");
    }

    #[test]
    fn split_host_ports() {
        check_split("h:80", Ok(("h", "80")));
        check_split("h", Err(SplitError::MissingPort));
        check_split("", Err(SplitError::MissingPort));
        check_split("a:b:c", Err(SplitError::TooManyColons));
        check_split("[::1]:80", Ok(("::1", "80")));
        check_split("[::1]", Err(SplitError::MissingPort));
        check_split("[::1]:80:9", Err(SplitError::TooManyColons));
        check_split("[::1]x:80", Err(SplitError::MissingPort));
        check_split("[::1:80", Err(SplitError::MissingBracket));
        check_split("h[:80", Err(SplitError::UnexpectedOpen));
        check_split("h]:80", Err(SplitError::UnexpectedClose));
        check_split(":", Ok(("", "")));
    }

    #[test]
    fn host_and_port_defaults() {
        assert_eq!(
            host_and_port(false, "Host.com"),
            Ok(("host.com".into(), "80".into()))
        );
        assert_eq!(
            host_and_port(true, "host.com"),
            Ok(("host.com".into(), "443".into()))
        );
        assert_eq!(
            host_and_port(false, "[::1]"),
            Ok(("::1".into(), "80".into()))
        );
        assert_eq!(
            host_and_port(false, "invalid:url:1234"),
            Err("address invalid:url:1234: too many colons in address".into())
        );
    }
}
