//! Protocol trace lines (`-V`) in nats-server's form (`client.go` `traceOp`, `traceMsg`).
//!
//! Go formats a slice with `%s`, hence the brackets: `<<- [PUB foo 5]`. The line here is
//! rebuilt from the parsed operation, so runs of spaces or tabs between arguments show as one
//! space (Go prints the argument text as received).

use crate::auth::go_quote;

/// `<<- [OP args]` or `->> [OP args]`.
pub(super) fn op(inbound: bool, name: &str, args: &[&[u8]]) -> String {
    let mut line = String::with_capacity(16 + args.iter().map(|a| a.len() + 1).sum::<usize>());
    line.push_str(if inbound { "<<- [" } else { "->> [" });
    line.push_str(name);
    for arg in args {
        line.push(' ');
        line.push_str(&String::from_utf8_lossy(arg));
    }
    line.push(']');
    line
}

/// The trace of a `PUB`/`HPUB` control line.
pub(super) fn publish(
    subject: &[u8],
    reply: Option<&[u8]>,
    header_len: Option<usize>,
    size: usize,
) -> String {
    let (name, sizes) = sized("PUB", header_len, size);
    match reply {
        Some(r) => op(true, &name, &[subject, r, sizes.as_bytes()]),
        None => op(true, &name, &[subject, sizes.as_bytes()]),
    }
}

/// The trace of a delivery's `MSG`/`HMSG` line.
pub(crate) fn delivery(
    subject: &[u8],
    sid: &[u8],
    reply: Option<&[u8]>,
    header_len: Option<usize>,
    size: usize,
) -> String {
    let (name, sizes) = sized("MSG", header_len, size);
    match reply {
        Some(r) => op(false, &name, &[subject, sid, r, sizes.as_bytes()]),
        None => op(false, &name, &[subject, sid, sizes.as_bytes()]),
    }
}

/// The operation name (`H`-prefixed with headers) and its size arguments (`[hdr ]total`).
fn sized(name: &str, header_len: Option<usize>, size: usize) -> (String, String) {
    match header_len {
        Some(h) => (format!("H{name}"), format!("{h} {size}")),
        None => (name.to_owned(), size.to_string()),
    }
}

/// `<<- MSG_PAYLOAD: ["..."]`, Go-quoted. With a limit, Go quotes the first `max` bytes and
/// then keeps the first `max` characters of the quoted text (escapes count), followed by `...`.
pub(super) fn payload(message: &[u8], max: usize) -> String {
    if max > 0 && message.len() > max {
        let quoted = go_quote(message.get(..max).unwrap_or(message));
        let cut = quoted.as_bytes().get(1..=max).unwrap_or_default();
        format!("<<- MSG_PAYLOAD: [\"{}...\"]", String::from_utf8_lossy(cut))
    } else {
        format!("<<- MSG_PAYLOAD: [{}]", go_quote(message))
    }
}

/// The CONNECT argument with the first password value replaced by `[REDACTED]`, as Go's
/// `removePassFromTrace` does with ``"?\s*pass\S*?"?\s*[:=]\s*"?(([^",\r\n}])*)``.
pub(super) fn redact_connect(arg: &[u8]) -> String {
    let text = String::from_utf8_lossy(arg);
    match password_value(text.as_bytes()) {
        Some((start, end)) => {
            let mut out = String::with_capacity(text.len() + 10);
            out.push_str(text.get(..start).unwrap_or_default());
            out.push_str("[REDACTED]");
            out.push_str(text.get(end..).unwrap_or_default());
            out
        }
        None => text.into_owned(),
    }
}

/// Byte range of the first match's capture group in [`redact_connect`]'s pattern.
fn password_value(s: &[u8]) -> Option<(usize, usize)> {
    let is_space = |b: u8| matches!(b, b' ' | b'\t' | b'\n' | b'\x0c' | b'\r');
    let skip_spaces = |mut i: usize| {
        while s.get(i).is_some_and(|b| is_space(*b)) {
            i += 1;
        }
        i
    };
    let mut from = 0;
    while let Some(rel) = memchr::memmem::find(s.get(from..)?, b"pass") {
        let at = from + rel + 4;
        // `\S*?` lazily: the first position where `"?\s*[:=]` matches.
        let mut j = at;
        loop {
            let mut k = j;
            if s.get(k) == Some(&b'"') {
                k += 1;
            }
            k = skip_spaces(k);
            if matches!(s.get(k), Some(b':' | b'=')) {
                let mut v = skip_spaces(k + 1);
                if s.get(v) == Some(&b'"') {
                    v += 1;
                }
                let len = s
                    .get(v..)
                    .unwrap_or_default()
                    .iter()
                    .take_while(|b| !matches!(b, b'"' | b',' | b'\r' | b'\n' | b'}'))
                    .count();
                return Some((v, v + len));
            }
            match s.get(j) {
                Some(b) if !is_space(*b) => j += 1,
                _ => break,
            }
        }
        from = from + rel + 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_password_is_redacted_like_go() {
        assert_eq!(
            redact_connect(br#"{"user":"bob","pass":"s3cr3t","verbose":false}"#),
            r#"{"user":"bob","pass":"[REDACTED]","verbose":false}"#
        );
        assert_eq!(
            redact_connect(br#"{"pass" : "a b", "x":1}"#),
            r#"{"pass" : "[REDACTED]", "x":1}"#
        );
        assert_eq!(
            redact_connect(br#"{"password":"x"}"#),
            r#"{"password":"[REDACTED]"}"#
        );
        assert_eq!(
            redact_connect(br#"{"pass":""}"#),
            r#"{"pass":"[REDACTED]"}"#
        );
        assert_eq!(redact_connect(br#"{"user":"x"}"#), r#"{"user":"x"}"#);
        // Only the first match, as Go's loop breaks after one replacement.
        assert_eq!(
            redact_connect(br#"{"pass":"a","pass":"b"}"#),
            r#"{"pass":"[REDACTED]","pass":"b"}"#
        );
        // "pass" followed by a space and no separator is not a key.
        assert_eq!(
            redact_connect(br#"{"user":"pass x"}"#),
            r#"{"user":"pass x"}"#
        );
    }

    #[test]
    fn payload_is_go_quoted_and_cut_like_go() {
        assert_eq!(payload(b"hello", 0), r#"<<- MSG_PAYLOAD: ["hello"]"#);
        assert_eq!(payload(b"a\"b\n", 0), r#"<<- MSG_PAYLOAD: ["a\"b\n"]"#);
        assert_eq!(
            payload(b"hello world", 5),
            r#"<<- MSG_PAYLOAD: ["hello..."]"#
        );
        assert_eq!(payload(b"hello", 5), r#"<<- MSG_PAYLOAD: ["hello"]"#);
        // Escapes count against the limit in the quoted text.
        assert_eq!(payload(b"\n\n\nabc", 3), r#"<<- MSG_PAYLOAD: ["\n\..."]"#);
    }

    #[test]
    fn op_lines() {
        assert_eq!(publish(b"foo", None, None, 5), "<<- [PUB foo 5]");
        assert_eq!(
            publish(b"foo", Some(b"r"), Some(10), 15),
            "<<- [HPUB foo r 10 15]"
        );
        assert_eq!(delivery(b"foo", b"1", None, None, 5), "->> [MSG foo 1 5]");
        assert_eq!(
            delivery(b"foo", b"1", Some(b"r"), Some(3), 8),
            "->> [HMSG foo 1 r 3 8]"
        );
        assert_eq!(op(true, "PING", &[]), "<<- [PING]");
        assert_eq!(
            op(false, "-ERR", &[b"Stale Connection"]),
            "->> [-ERR Stale Connection]"
        );
    }
}
