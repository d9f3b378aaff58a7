//! `strconv.Quote` (`%q`), which the reference uses in error, log and diagnostic texts.

use std::fmt::Write as _;

/// Quotes text or bytes as Go's `fmt.Sprintf("%q", s)` does: double quotes, `\"` and `\\`, the short
/// escapes `\a \b \f \n \r \t \v`, `\xNN` for other ASCII controls and for bytes that are not
/// valid UTF-8, and `\uXXXX`/`\UXXXXXXXX` for non-printable characters.
///
/// Go decides printability with its Unicode tables (`strconv.IsPrint`); this uses an
/// approximation that agrees for ASCII, controls, separators, format characters and private use,
/// which covers any subject a client can realistically send.
#[must_use]
pub fn quote(text: impl AsRef<[u8]>) -> String {
    let bytes = text.as_ref();
    let mut out = String::with_capacity(bytes.len().saturating_add(2));
    out.push('"');
    for chunk in bytes.utf8_chunks() {
        for ch in chunk.valid().chars() {
            push_char(&mut out, ch);
        }
        for byte in chunk.invalid() {
            let _ = write!(out, "\\x{byte:02x}");
        }
    }
    out.push('"');
    out
}

fn push_char(out: &mut String, ch: char) {
    match ch {
        '"' => out.push_str("\\\""),
        '\\' => out.push_str("\\\\"),
        '\u{7}' => out.push_str("\\a"),
        '\u{8}' => out.push_str("\\b"),
        '\u{c}' => out.push_str("\\f"),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        '\u{b}' => out.push_str("\\v"),
        ' '..='~' => out.push(ch),
        _ if u32::from(ch) < 0x80 => {
            let _ = write!(out, "\\x{:02x}", u32::from(ch));
        }
        _ if is_print(ch) => out.push(ch),
        _ if u32::from(ch) < 0x1_0000 => {
            let _ = write!(out, "\\u{:04x}", u32::from(ch));
        }
        _ => {
            let _ = write!(out, "\\U{:08x}", u32::from(ch));
        }
    }
}

/// Approximates Go's `strconv.IsPrint` for non-ASCII characters.
fn is_print(ch: char) -> bool {
    let code = u32::from(ch);
    !(ch.is_control()
        || ch.is_whitespace()
        || code == 0xad
        || (0x600..=0x605).contains(&code)
        || (0x200b..=0x200f).contains(&code)
        || (0x202a..=0x202e).contains(&code)
        || (0x2060..=0x206f).contains(&code)
        || code == 0xfeff
        || (0xfff9..=0xfffb).contains(&code)
        || (0xe000..=0xf8ff).contains(&code)
        || code >= 0xf_0000
        || (code & 0xfffe) == 0xfffe)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: &[u8], expect: &str) {
        assert_eq!(quote(input), expect, "{input:?}");
    }

    #[test]
    fn matches_go_strconv_quote() {
        // Expected values produced with Go's fmt.Sprintf("%q", ...).
        check(b"foo.bar", r#""foo.bar""#);
        check(b"", r#""""#);
        check(b"a\"b\\c", r#""a\"b\\c""#);
        check(b"\x07\x08\x0c\n\r\t\x0b", r#""\a\b\f\n\r\t\v""#);
        check(b"\x00\x1f\x7f", r#""\x00\x1f\x7f""#);
        check(b"\xff\xfe", r#""\xff\xfe""#);
        check("héllo.日本".as_bytes(), "\"héllo.日本\"");
        check("\u{a0}".as_bytes(), r#""\u00a0""#);
        check("\u{feff}".as_bytes(), r#""\ufeff""#);
        check("\u{f0000}".as_bytes(), r#""\U000f0000""#);
        check("😀".as_bytes(), "\"😀\"");
        check(b"a\xc3", r#""a\xc3""#);
        check(b"\x01\xff", r#""\x01\xff""#);
        check("a\"b\\c\n\u{1}é".as_bytes(), r#""a\"b\\c\n\x01é""#);
    }

    #[test]
    fn text_and_bytes_quote_alike() {
        assert_eq!(quote("é\u{85}"), quote("é\u{85}".as_bytes()));
        assert_eq!(quote(String::from("a.b")), r#""a.b""#);
        assert_eq!(quote("\u{85}"), r#""\u0085""#);
    }
}
