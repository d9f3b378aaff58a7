//! Go runtime behaviour the reference parser inherits: UTF-8 decoding, the `unicode` package's
//! digit and space classes, `path/filepath` joining and the OS error texts of `os.ReadFile`.
//!
//! Everything here reproduces Go 1.19 (Unicode 13.0.0), the toolchain the reference was built with.

/// Unicode category Nd (`unicode.IsDigit`) as inclusive code point ranges, from Go's tables.
const ND_RANGES: &[(u32, u32)] = &[
    (0x0030, 0x0039),
    (0x0660, 0x0669),
    (0x06f0, 0x06f9),
    (0x07c0, 0x07c9),
    (0x0966, 0x096f),
    (0x09e6, 0x09ef),
    (0x0a66, 0x0a6f),
    (0x0ae6, 0x0aef),
    (0x0b66, 0x0b6f),
    (0x0be6, 0x0bef),
    (0x0c66, 0x0c6f),
    (0x0ce6, 0x0cef),
    (0x0d66, 0x0d6f),
    (0x0de6, 0x0def),
    (0x0e50, 0x0e59),
    (0x0ed0, 0x0ed9),
    (0x0f20, 0x0f29),
    (0x1040, 0x1049),
    (0x1090, 0x1099),
    (0x17e0, 0x17e9),
    (0x1810, 0x1819),
    (0x1946, 0x194f),
    (0x19d0, 0x19d9),
    (0x1a80, 0x1a89),
    (0x1a90, 0x1a99),
    (0x1b50, 0x1b59),
    (0x1bb0, 0x1bb9),
    (0x1c40, 0x1c49),
    (0x1c50, 0x1c59),
    (0xa620, 0xa629),
    (0xa8d0, 0xa8d9),
    (0xa900, 0xa909),
    (0xa9d0, 0xa9d9),
    (0xa9f0, 0xa9f9),
    (0xaa50, 0xaa59),
    (0xabf0, 0xabf9),
    (0xff10, 0xff19),
    (0x104a0, 0x104a9),
    (0x10d30, 0x10d39),
    (0x11066, 0x1106f),
    (0x110f0, 0x110f9),
    (0x11136, 0x1113f),
    (0x111d0, 0x111d9),
    (0x112f0, 0x112f9),
    (0x11450, 0x11459),
    (0x114d0, 0x114d9),
    (0x11650, 0x11659),
    (0x116c0, 0x116c9),
    (0x11730, 0x11739),
    (0x118e0, 0x118e9),
    (0x11950, 0x11959),
    (0x11c50, 0x11c59),
    (0x11d50, 0x11d59),
    (0x11da0, 0x11da9),
    (0x16a60, 0x16a69),
    (0x16b50, 0x16b59),
    (0x1d7ce, 0x1d7ff),
    (0x1e140, 0x1e149),
    (0x1e2f0, 0x1e2f9),
    (0x1e950, 0x1e959),
    (0x1fbf0, 0x1fbf9),
    (0x16ee, 0x16f0),
    (0x2160, 0x2182),
];

/// `unicode.IsDigit`.
pub(crate) fn is_digit(c: char) -> bool {
    let code = u32::from(c);
    if code < 0x80 {
        return c.is_ascii_digit();
    }
    ND_RANGES
        .binary_search_by(|&(low, high)| {
            if high < code {
                std::cmp::Ordering::Less
            } else if low > code {
                std::cmp::Ordering::Greater
            } else {
                std::cmp::Ordering::Equal
            }
        })
        .is_ok()
}

/// `unicode.IsSpace`.
pub(crate) fn is_space(c: char) -> bool {
    matches!(
        c,
        '\t' | '\n' | '\u{b}' | '\u{c}' | '\r' | ' ' | '\u{85}' | '\u{a0}' | '\u{1680}' | '\u{2000}'
            ..='\u{200a}' | '\u{2028}' | '\u{2029}' | '\u{202f}' | '\u{205f}' | '\u{3000}'
    )
}

/// `utf8.DecodeRune`: the character at the start of `bytes` and its width; an invalid sequence
/// decodes as U+FFFD with width 1. Must not be called on an empty slice.
pub(crate) fn decode_rune(bytes: &[u8]) -> (char, usize) {
    let Some(&first) = bytes.first() else {
        return ('\u{fffd}', 1);
    };
    if first < 0x80 {
        return (char::from(first), 1);
    }
    let width = match first {
        0xc2..=0xdf => 2,
        0xe0..=0xef => 3,
        0xf0..=0xf4 => 4,
        _ => return ('\u{fffd}', 1),
    };
    match bytes.get(..width).map(std::str::from_utf8) {
        Some(Ok(text)) => match text.chars().next() {
            Some(c) => (c, width),
            None => ('\u{fffd}', 1),
        },
        _ => ('\u{fffd}', 1),
    }
}

/// `strings.ToLower(s) == word` for an ASCII lower-case `word`, including Go's two non-ASCII
/// characters that lower-case to ASCII letters (U+0130 to `i`, U+212A KELVIN SIGN to `k`).
pub(crate) fn lower_eq(text: &[u8], word: &str) -> bool {
    let mut rest = text;
    let mut expected = word.bytes();
    while !rest.is_empty() {
        let (c, width) = decode_rune(rest);
        rest = rest.get(width..).unwrap_or_default();
        let lowered = match c {
            '\u{130}' => 'i',
            '\u{212a}' => 'k',
            other => other.to_ascii_lowercase(),
        };
        match expected.next() {
            Some(want) if u32::from(want) == u32::from(lowered) => {}
            _ => return false,
        }
    }
    expected.next().is_none()
}

/// `filepath.Clean` (Unix rules), on bytes.
pub(crate) fn clean(path: &[u8]) -> Vec<u8> {
    if path.is_empty() {
        return b".".to_vec();
    }
    let rooted = path.first() == Some(&b'/');
    let n = path.len();
    let mut out: Vec<u8> = Vec::with_capacity(n);
    let (mut r, mut dotdot) = (0usize, 0usize);
    if rooted {
        out.push(b'/');
        r = 1;
        dotdot = 1;
    }
    let at = |i: usize| path.get(i).copied();
    while r < n {
        if at(r) == Some(b'/') || (at(r) == Some(b'.') && (r + 1 == n || at(r + 1) == Some(b'/'))) {
            r += 1;
        } else if at(r) == Some(b'.')
            && at(r + 1) == Some(b'.')
            && (r + 2 == n || at(r + 2) == Some(b'/'))
        {
            r += 2;
            if out.len() > dotdot {
                let mut w = out.len() - 1;
                while w > dotdot && out.get(w) != Some(&b'/') {
                    w -= 1;
                }
                out.truncate(w);
            } else if !rooted {
                if !out.is_empty() {
                    out.push(b'/');
                }
                out.extend_from_slice(b"..");
                dotdot = out.len();
            }
        } else {
            if (rooted && out.len() != 1) || (!rooted && !out.is_empty()) {
                out.push(b'/');
            }
            while r < n && at(r) != Some(b'/') {
                out.extend(at(r));
                r += 1;
            }
        }
    }
    if out.is_empty() {
        out.push(b'.');
    }
    out
}

/// `filepath.Dir`.
pub(crate) fn dir(path: &[u8]) -> Vec<u8> {
    let cut = path.iter().rposition(|&b| b == b'/').map_or(0, |i| i + 1);
    clean(path.get(..cut).unwrap_or_default())
}

/// `filepath.Join(dir, name)`.
pub(crate) fn join(dir: &[u8], name: &[u8]) -> Vec<u8> {
    if dir.is_empty() {
        if name.is_empty() {
            return Vec::new();
        }
        return clean(name);
    }
    let mut joined = dir.to_vec();
    joined.push(b'/');
    joined.extend_from_slice(name);
    clean(&joined)
}

/// The text Go's `syscall.Errno.Error()` gives for an errno on Linux.
pub(crate) fn errno_text(errno: i32) -> String {
    let text = match errno {
        1 => "operation not permitted",
        2 => "no such file or directory",
        5 => "input/output error",
        6 => "no such device or address",
        9 => "bad file descriptor",
        12 => "cannot allocate memory",
        13 => "permission denied",
        16 => "device or resource busy",
        20 => "not a directory",
        21 => "is a directory",
        22 => "invalid argument",
        23 => "too many open files in system",
        24 => "too many open files",
        27 => "file too large",
        36 => "file name too long",
        40 => "too many levels of symbolic links",
        75 => "value too large for defined data type",
        _ => return format!("errno {errno}"),
    };
    text.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_join(dir_part: &str, name: &str, expect: &str) {
        assert_eq!(
            String::from_utf8(join(dir_part.as_bytes(), name.as_bytes())).unwrap(),
            expect
        );
    }

    #[test]
    fn join_matches_go() {
        check_join(".", "a.conf", "a.conf");
        check_join(".", "", ".");
        check_join("/srv", "/etc/nats/x.conf", "/srv/etc/nats/x.conf");
        check_join(".", "/etc/x.conf", "etc/x.conf");
        check_join("conf.d", "../shared.conf", "shared.conf");
        check_join(".", "../../a", "../../a");
        check_join("a", "./b/../c", "a/c");
        check_join("/", "../x", "/x");
        check_join("", "", "");
    }

    #[test]
    fn dir_matches_go() {
        for (path, expect) in [
            ("x.conf", "."),
            ("a/b.conf", "a"),
            ("/a", "/"),
            ("", "."),
            ("a//b/", "a/b"),
        ] {
            assert_eq!(dir(path.as_bytes()), expect.as_bytes(), "{path}");
        }
    }

    #[test]
    fn classes() {
        assert!(is_digit('7') && is_digit('\u{663}') && is_digit('\u{ff14}') && !is_digit('x'));
        assert!(is_space('\u{a0}') && is_space('\u{3000}') && !is_space('\u{feff}'));
        assert_eq!(decode_rune(b"\xe9x"), ('\u{fffd}', 1));
        assert_eq!(decode_rune("é".as_bytes()), ('é', 2));
        assert!(lower_eq("\u{130}NCLUDE".as_bytes(), "include"));
        assert!(!lower_eq(b"includes", "include"));
    }
}
