//! The HTTP `Date` header value (RFC 9110 IMF-fixdate) from a Unix time the caller passes in.

const DAY_NAMES: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
const MONTH_NAMES: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Appends `Mon, 23 Nov 2026 09:41:54 GMT` for `unix_secs` to `out`.
pub(crate) fn write_http_date(unix_secs: u64, out: &mut Vec<u8>) {
    let days = unix_secs / 86_400;
    let secs_of_day = unix_secs % 86_400;
    let (year, month, day) = civil_from_days(days);
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

/// Howard Hinnant's `civil_from_days` for days since 1970-01-01 (no negative days here).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let shifted = days + 719_468;
    let era = shifted / 146_097;
    let day_of_era = shifted % 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    (year, month, day)
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
