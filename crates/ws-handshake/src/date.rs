//! The HTTP `Date` header value (RFC 9110 §5.6.7 IMF-fixdate) from a Unix time the caller
//! passes in. The handshake's refusals carry it, and the binary's monitoring responses use it too.

use gotext::civil_from_days;

const DAY_NAMES: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
const MONTH_NAMES: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Appends the HTTP `Date` value for `unix_secs` seconds after the Unix epoch to `out`, for
/// example `Mon, 23 Nov 2026 09:41:54 GMT` (what Go's `http.TimeFormat` prints in UTC).
pub fn write_http_date(unix_secs: u64, out: &mut Vec<u8>) {
    let days = unix_secs / 86_400;
    let secs_of_day = unix_secs % 86_400;
    let (year, month, day) = civil_from_days(i64::try_from(days).unwrap_or(i64::MAX));
    let day_name = DAY_NAMES
        .get(usize::try_from(days % 7).unwrap_or(0))
        .copied()
        .unwrap_or("Thu");
    let month_name = MONTH_NAMES
        .get(usize::try_from(month.saturating_sub(1)).unwrap_or(0))
        .copied()
        .unwrap_or("Jan");
    let text = format!(
        "{day_name}, {day:02} {month_name} {year:04} {:02}:{:02}:{:02} GMT",
        secs_of_day / 3600,
        secs_of_day / 60 % 60,
        secs_of_day % 60
    );
    out.extend_from_slice(text.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(unix_secs: u64, expect: &str) {
        let mut out = Vec::new();
        write_http_date(unix_secs, &mut out);
        assert_eq!(String::from_utf8(out).unwrap(), expect);
    }

    #[test]
    fn dates() {
        check(0, "Thu, 01 Jan 1970 00:00:00 GMT");
        check(951_782_400, "Tue, 29 Feb 2000 00:00:00 GMT");
        check(1_795_426_914, "Mon, 23 Nov 2026 09:41:54 GMT");
        check(4_102_444_799, "Thu, 31 Dec 2099 23:59:59 GMT");
    }
}
