//! Subject rules (nats-server's `server/sublist.go`: `IsValidSubject`, `IsValidLiteralSubject`,
//! `matchLiteral`).

/// True when `subject` is a valid subscription subject: non-empty tokens, `>` only as the last
/// token. Wildcard characters inside longer tokens are literal.
#[must_use]
pub fn is_valid_subscription(subject: &[u8]) -> bool {
    if subject.is_empty() {
        return false;
    }
    let mut tokens = subject.split(|b| *b == b'.').peekable();
    while let Some(token) = tokens.next() {
        if token.is_empty() {
            return false;
        }
        if token == b">" && tokens.peek().is_some() {
            return false;
        }
    }
    true
}

/// True when `subject` is a valid literal subject (pedantic publish check, `/subsz?test=`):
/// no empty token and no token equal to `*` or `>`. Like nats-server's `IsValidLiteralSubject`
/// (`server/sublist.go`), it does not look for white space.
#[must_use]
pub fn is_valid_literal(subject: &[u8]) -> bool {
    !subject.is_empty()
        && subject
            .split(|b| *b == b'.')
            .all(|t| !t.is_empty() && t != b"*" && t != b">")
}

/// True when `subject` is a valid publish subject (nats-server's `IsValidPublishSubject`): a
/// valid literal subject without white space.
#[must_use]
pub fn is_valid_publish(subject: &[u8]) -> bool {
    is_valid_literal(subject) && !subject.iter().any(|b| b" \t\n\r\x0c".contains(b))
}

/// True when every subject matching `subject` also matches `pattern` (nats-server's
/// `isSubsetMatch`, `server/sublist.go`): whether an import of `subject` is covered by an
/// export of `pattern`.
#[must_use]
pub fn is_subset_match(subject: &[u8], pattern: &[u8]) -> bool {
    let mut tokens = subject.split(|b| *b == b'.');
    for pattern_token in pattern.split(|b| *b == b'.') {
        let Some(token) = tokens.next() else {
            return false;
        };
        if pattern_token.is_empty() {
            return false;
        }
        if pattern_token == b">" {
            return true;
        }
        if token.is_empty() || token == b">" {
            return false;
        }
        if token == b"*" {
            if pattern_token != b"*" {
                return false;
            }
            continue;
        }
        // nats-server looks only at the first byte here, so a pattern token such as `*x`
        // matches any token.
        if pattern_token.first() != Some(&b'*') && token != pattern_token {
            return false;
        }
    }
    tokens.next().is_none()
}

/// True when some subject matches both `a` and `b` (nats-server's `SubjectsCollide`).
#[must_use]
pub fn collide(a: &[u8], b: &[u8]) -> bool {
    let mut left = a.split(|b| *b == b'.');
    let mut right = b.split(|b| *b == b'.');
    loop {
        match (left.next(), right.next()) {
            (None, None) => return true,
            (Some(l), Some(r)) => {
                if l == b">" || r == b">" {
                    return true;
                }
                if l != b"*" && r != b"*" && l != r {
                    return false;
                }
            }
            _ => return false,
        }
    }
}

/// True when `subject` has a `*` or `>` token.
#[must_use]
pub fn has_wildcard(subject: &[u8]) -> bool {
    subject
        .split(|b| *b == b'.')
        .any(|t| t == b"*" || t == b">")
}

/// Number of tokens in `subject`.
#[must_use]
pub fn token_count(subject: &[u8]) -> usize {
    subject.split(|b| *b == b'.').count()
}

/// Matches a subscription `pattern` against a publish `subject`, whose tokens are all literal
/// (a `*` in the subject only matches a `*` wildcard or a `>` in the pattern). Subjects with an
/// empty token match nothing.
#[must_use]
pub fn matches(pattern: &[u8], subject: &[u8]) -> bool {
    if subject.is_empty() || pattern.is_empty() {
        return false;
    }
    let mut subj = subject.split(|b| *b == b'.');
    let mut pat = pattern.split(|b| *b == b'.');
    loop {
        match (pat.next(), subj.next()) {
            (None, None) => return true,
            (Some(p), Some(s)) => {
                if s.is_empty() {
                    return false;
                }
                if p == b">" {
                    return subj.all(|t| !t.is_empty());
                }
                if p != b"*" && p != s {
                    return false;
                }
            }
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscription_validity() {
        for (s, ok) in [
            ("a.b", true),
            ("a.>", true),
            (">", true),
            ("*", true),
            ("a.*.c", true),
            ("foo*.b>r", true),
            ("a..b", false),
            (".a", false),
            ("a.", false),
            (".", false),
            ("", false),
            ("a.>.b", false),
            (">.a", false),
        ] {
            assert_eq!(is_valid_subscription(s.as_bytes()), ok, "{s}");
        }
    }

    #[test]
    fn literal_validity() {
        for (s, ok) in [
            ("foo", true),
            ("foo.bar", true),
            ("foo*.b>r", true),
            ("foo.*", false),
            ("foo.>", false),
            ("foo..bar", false),
            ("", false),
            ("foo bar", true),
        ] {
            assert_eq!(is_valid_literal(s.as_bytes()), ok, "{s}");
        }
    }

    #[test]
    fn matching() {
        for (p, s, ok) in [
            ("foo", "foo", true),
            ("foo", "bar", false),
            ("foo.*", "foo.bar", true),
            ("foo.*", "foo", false),
            ("foo.*", "foo.bar.baz", false),
            ("foo.>", "foo.bar.baz", true),
            ("foo.>", "foo", false),
            (">", "foo", true),
            (">", "foo.bar", true),
            ("*.*", "foo.*", true),
            ("foo.bar", "foo.*", false),
            ("*.bar", "foo.*", false),
            ("foo.>", "foo.>", true),
            ("foo.*", "foo..bar", false),
            (">", "foo..bar", false),
            ("foo.>", "foo.", false),
        ] {
            assert_eq!(matches(p.as_bytes(), s.as_bytes()), ok, "{p} vs {s}");
        }
    }

    #[test]
    fn wildcard_detection() {
        for (subject, expect) in [
            ("foo", false),
            ("foo.*", true),
            ("*", true),
            (">", true),
            ("foo.>", true),
            ("foo*", false),
            ("foo.*bar", false),
            ("*.foo", true),
            ("", false),
        ] {
            assert_eq!(has_wildcard(subject.as_bytes()), expect, "{subject:?}");
        }
    }

    #[test]
    fn subset_matching() {
        for (subject, test, expect) in [
            ("foo.bar", "foo.*", true),
            ("foo.*", "foo.*", true),
            ("foo.*", ">", true),
            ("foo.*", "*.*", true),
            ("foo.*", "foo.bar", false),
            ("foo.>", "foo.*", false),
            ("foo.>", "foo.>", true),
            ("foo.bar.baz", "foo.>", true),
            ("foo", "foo.>", false),
            ("foo.bar", "foo", false),
            ("foo", "foo.bar", false),
            ("foo..bar", "foo.*.bar", false),
            ("q1", "q*", false),
            ("q1", "*", true),
            ("a.b", "*", false),
            ("abc", "*x", true),
        ] {
            assert_eq!(
                is_subset_match(subject.as_bytes(), test.as_bytes()),
                expect,
                "{subject:?} within {test:?}"
            );
        }
    }
}
