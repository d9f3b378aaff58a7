//! `time.Duration.String`, which the reference prints in config diagnostics, reload errors and
//! the monitoring endpoints (`rtt`, timeouts).

use std::time::Duration;

const NANOS_PER_MICRO: u64 = 1_000;
const NANOS_PER_MILLI: u64 = 1_000_000;
const NANOS_PER_SECOND: u64 = 1_000_000_000;

/// Go's `time.Duration(nanos).String()`: `1h2m3.5s`, `1.5ms`, `850ns`, `0s`, `-2m0s`.
#[must_use]
pub fn format_duration(nanos: i64) -> String {
    let negative = nanos < 0;
    let mut value = nanos.unsigned_abs();
    // Built backwards, as Go does, then reversed.
    let mut out: Vec<u8> = Vec::with_capacity(32);
    if value < NANOS_PER_SECOND {
        out.push(b's');
        let precision = match value {
            0 => return "0s".to_owned(),
            v if v < NANOS_PER_MICRO => {
                out.push(b'n');
                0
            }
            v if v < NANOS_PER_MILLI => {
                // "µ" (U+00B5) is 0xC2 0xB5; pushed backwards.
                out.push(0xB5);
                out.push(0xC2);
                3
            }
            _ => {
                out.push(b'm');
                6
            }
        };
        value = frac(&mut out, value, precision);
        int(&mut out, value);
    } else {
        out.push(b's');
        value = frac(&mut out, value, 9);
        int(&mut out, value % 60);
        value /= 60;
        if value > 0 {
            out.push(b'm');
            int(&mut out, value % 60);
            value /= 60;
            if value > 0 {
                out.push(b'h');
                int(&mut out, value);
            }
        }
    }
    if negative {
        out.push(b'-');
    }
    out.reverse();
    String::from_utf8_lossy(&out).into_owned()
}

/// [`format_duration`] of a `std::time::Duration`. Go's durations are signed 64-bit nanosecond
/// counts, so anything longer than about 292 years prints as the longest one Go has.
#[must_use]
pub fn format_std_duration(d: Duration) -> String {
    format_duration(i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

/// Appends `value` printed as Go's `fmtFrac` does: a fraction of `precision` digits without
/// trailing zeros (and without the point when all are zero); returns the integer part.
fn frac(out: &mut Vec<u8>, mut value: u64, precision: u32) -> u64 {
    let mut printed = false;
    for _ in 0..precision {
        let digit = value % 10;
        printed = printed || digit != 0;
        if printed {
            out.push(b'0' + u8::try_from(digit).unwrap_or(0));
        }
        value /= 10;
    }
    if printed {
        out.push(b'.');
    }
    value
}

/// Appends the decimal digits of `value`, backwards (Go's `fmtInt`).
fn int(out: &mut Vec<u8>, mut value: u64) {
    if value == 0 {
        out.push(b'0');
        return;
    }
    while value > 0 {
        out.push(b'0' + u8::try_from(value % 10).unwrap_or(0));
        value /= 10;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_duration_matches_go() {
        // Expected values produced with Go's time.Duration(n).String().
        let cases: &[(i64, &str)] = &[
            (0, "0s"),
            (1, "1ns"),
            (850, "850ns"),
            (1_100, "1.1\u{b5}s"),
            (264_000, "264\u{b5}s"),
            (2_200_000, "2.2ms"),
            (2_140_055, "2.140055ms"),
            (1_000_000_000, "1s"),
            (1_500_000_000, "1.5s"),
            (30_000_000_000, "30s"),
            (62_000_000_000, "1m2s"),
            (120_000_000_000, "2m0s"),
            (3_600_000_000_000, "1h0m0s"),
            (3_723_000_000_000, "1h2m3s"),
            (-120_000_000_000, "-2m0s"),
            (i64::MAX, "2562047h47m16.854775807s"),
            (i64::MIN, "-2562047h47m16.854775808s"),
        ];
        for (nanos, want) in cases {
            assert_eq!(format_duration(*nanos), *want, "nanos {nanos}");
        }
    }

    #[test]
    fn std_durations_saturate_at_go_s_longest() {
        let check = |d: Duration, want: &str| assert_eq!(format_std_duration(d), want, "{d:?}");
        check(Duration::ZERO, "0s");
        check(Duration::from_nanos(850), "850ns");
        check(Duration::from_micros(264), "264\u{b5}s");
        check(Duration::from_millis(1500), "1.5s");
        check(Duration::from_secs(3600), "1h0m0s");
        check(Duration::MAX, "2562047h47m16.854775807s");
    }
}
