//! Reading the auth cookies from the `Cookie` headers (`server/websocket.go` `wsUpgrade`).
//!
//! The pair syntax follows Go's `readCookies` (RFC 6265): pairs are split on `;` and trimmed,
//! names must be tokens, one pair of surrounding double quotes is removed from the value, and a
//! value with a byte outside `0x20..0x7f` or with `"`, `;` or `\` is dropped. Like newer
//! nats-server (2.11+), every cookie is scanned and the last match wins.

use crate::head::{HeaderPair, values};
use crate::policy::{CookieNames, is_token};

/// The auth cookie values found in the request, by configured name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cookies {
    /// The value of the `jwt_cookie` cookie.
    pub jwt: Option<String>,
    /// The value of the `user_cookie` cookie.
    pub user: Option<String>,
    /// The value of the `pass_cookie` cookie.
    pub pass: Option<String>,
    /// The value of the `token_cookie` cookie.
    pub token: Option<String>,
}

/// Collects the configured cookies from every `Cookie` header.
pub(crate) fn extract(headers: &[HeaderPair<'_>], names: &CookieNames) -> Cookies {
    let mut found = Cookies::default();
    if names.jwt.is_none() && names.user.is_none() && names.pass.is_none() && names.token.is_none()
    {
        return found;
    }
    for line in values(headers, "Cookie") {
        for part in line.split(|byte| *byte == b';') {
            let part = trim_space(part);
            if part.is_empty() {
                continue;
            }
            let (name, value) = match memchr::memchr(b'=', part) {
                Some(eq) => (
                    part.get(..eq).unwrap_or_default(),
                    part.get(eq + 1..).unwrap_or_default(),
                ),
                None => (part, &b""[..]),
            };
            if !is_token(name) {
                continue;
            }
            let Some(value) = cookie_value(value) else {
                continue;
            };
            let slots = [
                (&names.jwt, &mut found.jwt),
                (&names.user, &mut found.user),
                (&names.pass, &mut found.pass),
                (&names.token, &mut found.token),
            ];
            for (wanted, slot) in slots {
                if wanted.as_deref().map(str::as_bytes) == Some(name) {
                    *slot = Some(value.clone());
                }
            }
        }
    }
    found
}

/// Go's `parseCookieValue(raw, true)`.
fn cookie_value(raw: &[u8]) -> Option<String> {
    let raw = match raw {
        [b'"', inner @ .., b'"'] => inner,
        other => other,
    };
    let valid = raw
        .iter()
        .all(|byte| (0x20..0x7f).contains(byte) && !matches!(byte, b'"' | b';' | b'\\'));
    if !valid {
        return None;
    }
    // Every byte is ASCII here, so this never loses data.
    Some(String::from_utf8_lossy(raw).into_owned())
}

/// Go's `textproto.TrimString`: trims ASCII space, tab, CR and LF.
fn trim_space(bytes: &[u8]) -> &[u8] {
    let is_space = |byte: &u8| matches!(byte, b' ' | b'\t' | b'\r' | b'\n');
    let start = bytes
        .iter()
        .position(|b| !is_space(b))
        .unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| !is_space(b))
        .map_or(start, |last| last + 1);
    bytes.get(start..end).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> CookieNames {
        CookieNames {
            jwt: Some("jwt".into()),
            user: Some("un".into()),
            pass: Some("pw".into()),
            token: Some("tok".into()),
        }
    }

    fn check(lines: &[&str], expect: [Option<&str>; 4]) {
        let headers: Vec<HeaderPair<'_>> = lines
            .iter()
            .map(|line| ("Cookie", line.as_bytes()))
            .collect();
        let got = extract(&headers, &names());
        let got = [got.jwt, got.user, got.pass, got.token];
        let expect = expect.map(|value| value.map(str::to_owned));
        assert_eq!(got, expect, "{lines:?}");
    }

    #[test]
    fn cookies() {
        check(
            &["un=me; pw=s3cr3t!"],
            [None, Some("me"), Some("s3cr3t!"), None],
        );
        check(
            &["jwt=\"abc\"; tok=t"],
            [Some("abc"), None, None, Some("t")],
        );
        check(&["jwt=first", "jwt=last"], [Some("last"), None, None, None]);
        check(&["jwt=a b"], [Some("a b"), None, None, None]);
        check(&["jwt=a\\b; un=ok"], [None, Some("ok"), None, None]);
        check(&["jwt =x; ;un"], [None, Some(""), None, None]);
        check(&["other=1"], [None, None, None, None]);
        check(&[], [None, None, None, None]);
    }

    #[test]
    fn nothing_configured_reads_nothing() {
        let headers: Vec<HeaderPair<'_>> = vec![("Cookie", b"jwt=x".as_slice())];
        assert_eq!(
            extract(&headers, &CookieNames::default()),
            Cookies::default()
        );
    }
}
