//! The pieces of Go's standard library whose exact behaviour and error texts the reference's
//! option handling exposes: `time.ParseDuration`, `%q` of a list, `net.SplitHostPort` and
//! `strconv.Atoi`. All of them reproduce Go 1.19. `strconv.Quote` and `time.Duration.String`,
//! which the other crates print too, live in the `gotext` crate.

use std::fmt::Write as _;

const NANOS_PER_MICRO: u64 = 1_000;
const NANOS_PER_MILLI: u64 = 1_000_000;
const NANOS_PER_SECOND: u64 = 1_000_000_000;
const NANOS_PER_MINUTE: u64 = 60 * NANOS_PER_SECOND;
const NANOS_PER_HOUR: u64 = 60 * NANOS_PER_MINUTE;
const LIMIT: u64 = 1 << 63;

/// The quoting of Go's `time` package error messages: bytes of non-ASCII and control
/// characters become `\xHH`, `"` and `\` are escaped.
fn time_quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        if !(' '..'\u{80}').contains(&c) {
            let mut buf = [0u8; 4];
            for byte in c.encode_utf8(&mut buf).bytes() {
                let _ = write!(out, "\\x{byte:02x}");
            }
        } else {
            if c == '"' || c == '\\' {
                out.push('\\');
            }
            out.push(c);
        }
    }
    out.push('"');
    out
}

fn invalid(orig: &str) -> String {
    format!("time: invalid duration {}", time_quote(orig))
}

fn leading_int(text: &[u8]) -> Option<(u64, usize)> {
    let mut value: u64 = 0;
    let mut used = 0;
    for &c in text {
        if !c.is_ascii_digit() {
            break;
        }
        if value > LIMIT / 10 {
            return None;
        }
        value = value * 10 + u64::from(c - b'0');
        if value > LIMIT {
            return None;
        }
        used += 1;
    }
    Some((value, used))
}

fn leading_fraction(text: &[u8]) -> (u64, f64, usize) {
    let mut value: u64 = 0;
    let mut scale = 1.0f64;
    let mut overflow = false;
    let mut used = 0;
    for &c in text {
        if !c.is_ascii_digit() {
            break;
        }
        used += 1;
        if overflow {
            continue;
        }
        if value > (LIMIT - 1) / 10 {
            overflow = true;
            continue;
        }
        let next = value * 10 + u64::from(c - b'0');
        if next > LIMIT {
            overflow = true;
            continue;
        }
        value = next;
        scale *= 10.0;
    }
    (value, scale, used)
}

fn unit_nanos(unit: &str) -> Option<u64> {
    Some(match unit {
        "ns" => 1,
        "us" | "\u{b5}s" | "\u{3bc}s" => NANOS_PER_MICRO,
        "ms" => NANOS_PER_MILLI,
        "s" => NANOS_PER_SECOND,
        "m" => NANOS_PER_MINUTE,
        "h" => NANOS_PER_HOUR,
        _ => return None,
    })
}

/// `time.ParseDuration`: the signed number of nanoseconds, or Go's exact error text
/// (`time: invalid duration "abc"`, `time: missing unit in duration "1"`,
/// `time: unknown unit "x" in duration "1x"`).
pub(crate) fn parse_duration(orig: &str) -> Result<i64, String> {
    let mut rest = orig.as_bytes();
    let mut negative = false;
    if let Some((&sign, tail)) = rest.split_first()
        && (sign == b'-' || sign == b'+')
    {
        negative = sign == b'-';
        rest = tail;
    }
    if rest == b"0" {
        return Ok(0);
    }
    if rest.is_empty() {
        return Err(invalid(orig));
    }
    let mut total: u64 = 0;
    while let Some(&first) = rest.first() {
        if !(first == b'.' || first.is_ascii_digit()) {
            return Err(invalid(orig));
        }
        let (mut value, used) = leading_int(rest).ok_or_else(|| invalid(orig))?;
        rest = rest.get(used..).unwrap_or_default();
        let before_point = used > 0;
        let mut fraction = 0u64;
        let mut scale = 1.0f64;
        let mut after_point = false;
        if rest.first() == Some(&b'.') {
            rest = rest.get(1..).unwrap_or_default();
            let (f, s, used) = leading_fraction(rest);
            fraction = f;
            scale = s;
            after_point = used > 0;
            rest = rest.get(used..).unwrap_or_default();
        }
        if !before_point && !after_point {
            return Err(invalid(orig));
        }
        let unit_len = rest
            .iter()
            .position(|&c| c == b'.' || c.is_ascii_digit())
            .unwrap_or(rest.len());
        if unit_len == 0 {
            return Err(format!(
                "time: missing unit in duration {}",
                time_quote(orig)
            ));
        }
        let (unit_bytes, tail) = rest.split_at(unit_len);
        rest = tail;
        let unit_text = String::from_utf8_lossy(unit_bytes);
        let Some(unit) = unit_nanos(&unit_text) else {
            return Err(format!(
                "time: unknown unit {} in duration {}",
                time_quote(&unit_text),
                time_quote(orig)
            ));
        };
        if value > LIMIT / unit {
            return Err(invalid(orig));
        }
        value *= unit;
        if fraction > 0 {
            #[expect(
                clippy::cast_possible_truncation,
                clippy::cast_sign_loss,
                clippy::cast_precision_loss,
                reason = "Go converts float64 to uint64 the same way; the product is at most 3.6e12"
            )]
            let extra = (fraction as f64 * (unit as f64 / scale)) as u64;
            value = value.saturating_add(extra);
            if value > LIMIT {
                return Err(invalid(orig));
            }
        }
        total = total.saturating_add(value);
        if total > LIMIT {
            return Err(invalid(orig));
        }
    }
    if negative {
        // total <= 2^63 here, so the negation fits.
        return Ok(0i64.wrapping_sub_unsigned(total));
    }
    i64::try_from(total).map_err(|_| invalid(orig))
}

/// `%q` of a list of strings: `["a" "b"]`.
pub(crate) fn quote_list(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(gotext::quote).collect();
    format!("[{}]", quoted.join(" "))
}

/// `net.SplitHostPort`; the reference only reports *that* it failed.
pub(crate) fn split_host_port(hostport: &str) -> Option<(&str, &str)> {
    let colon = hostport.rfind(':')?;
    let (host, inner_start, after_host) = if hostport.starts_with('[') {
        let end = hostport.find(']')?;
        let after = end + 1;
        if after == hostport.len() {
            return None;
        }
        if after != colon {
            return None;
        }
        (hostport.get(1..end)?, 1, after)
    } else {
        let host = hostport.get(..colon)?;
        if host.contains(':') {
            return None;
        }
        (host, 0, 0)
    };
    if hostport.get(inner_start..)?.contains('[') {
        return None;
    }
    if hostport.get(after_host..)?.contains(']') {
        return None;
    }
    Some((host, hostport.get(colon + 1..)?))
}

/// `strconv.Atoi` on a 64-bit platform.
pub(crate) fn atoi(text: &str) -> Option<i64> {
    let digits = text
        .strip_prefix('+')
        .or_else(|| text.strip_prefix('-'))
        .unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse::<i64>().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_duration_matches_go() {
        let second = 1_000_000_000i64;
        let cases: &[(&str, Result<i64, &str>)] = &[
            ("0", Ok(0)),
            ("-0", Ok(0)),
            ("+0", Ok(0)),
            ("2s", Ok(2 * second)),
            ("1.5s", Ok(1_500_000_000)),
            ("1h30m", Ok(5400 * second)),
            ("500ms", Ok(500_000_000)),
            ("10us", Ok(10_000)),
            ("10\u{b5}s", Ok(10_000)),
            ("10\u{3bc}s", Ok(10_000)),
            ("7ns", Ok(7)),
            (".5s", Ok(500_000_000)),
            ("5.s", Ok(5 * second)),
            ("-1.5h", Ok(-5400 * second)),
            ("1m30s", Ok(90 * second)),
            ("0.3333333333333333333h", Ok(1_200_000_000_000)),
            ("9223372036854775807ns", Ok(i64::MAX)),
            ("-9223372036854775808ns", Ok(i64::MIN)),
            (
                "9223372036854775808ns",
                Err("time: invalid duration \"9223372036854775808ns\""),
            ),
            ("", Err("time: invalid duration \"\"")),
            ("abc", Err("time: invalid duration \"abc\"")),
            ("-", Err("time: invalid duration \"-\"")),
            (".s", Err("time: invalid duration \".s\"")),
            ("1", Err("time: missing unit in duration \"1\"")),
            ("1.5", Err("time: missing unit in duration \"1.5\"")),
            ("3x", Err("time: unknown unit \"x\" in duration \"3x\"")),
            ("3d", Err("time: unknown unit \"d\" in duration \"3d\"")),
            ("1s ", Err("time: unknown unit \"s \" in duration \"1s \"")),
            (
                "1é",
                Err("time: unknown unit \"\\xc3\\xa9\" in duration \"1\\xc3\\xa9\""),
            ),
            ("3000000h", Err("time: invalid duration \"3000000h\"")),
            ("\"q", Err("time: invalid duration \"\\\"q\"")),
        ];
        for (input, want) in cases {
            let got = parse_duration(input);
            assert_eq!(got, want.map_err(str::to_owned), "input {input:?}");
        }
    }

    #[test]
    fn split_host_port_matches_go() {
        let cases: &[(&str, Option<(&str, &str)>)] = &[
            ("localhost:1234", Some(("localhost", "1234"))),
            (":1234", Some(("", "1234"))),
            ("[::1]:80", Some(("::1", "80"))),
            ("nohost", None),
            ("a:b:c", None),
            ("[::1]", None),
            ("[::1]x:80", None),
            ("a[b:80", None),
            ("a]b:80", None),
            ("host:", Some(("host", ""))),
        ];
        for (input, want) in cases {
            assert_eq!(split_host_port(input), *want, "input {input:?}");
        }
    }

    #[test]
    fn quote_list_and_atoi() {
        assert_eq!(
            quote_list(&["X".to_owned(), "Y".to_owned()]),
            "[\"X\" \"Y\"]"
        );
        assert_eq!(atoi("-1"), Some(-1));
        assert_eq!(atoi("+7"), Some(7));
        assert_eq!(atoi(""), None);
        assert_eq!(atoi("1a"), None);
        assert_eq!(atoi("99999999999999999999"), None);
    }
}
