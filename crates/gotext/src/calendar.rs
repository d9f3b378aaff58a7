//! Days since the Unix epoch to and from proleptic Gregorian dates (Howard Hinnant's
//! `days_from_civil` and `civil_from_days`), for the dates the reference prints: RFC 3339 times
//! in the monitoring JSON and the config dump, log timestamps and HTTP `Date` headers. All of
//! them are in UTC: natsws reads no time zone data.

use std::fmt::Write as _;

/// `(year, month, day)` of the day `days` after 1970-01-01 (negative days are before it).
/// Months and days count from 1.
#[must_use]
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let shifted = days + 719_468;
    let era = shifted.div_euclid(146_097);
    let day_of_era = shifted.rem_euclid(146_097);
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
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    // Both are in range by construction: day 1..=31, month 1..=12.
    (
        year,
        u32::try_from(month).unwrap_or(1),
        u32::try_from(day).unwrap_or(1),
    )
}

/// Days since 1970-01-01 of a proleptic Gregorian date; the inverse of [`civil_from_days`].
/// The caller validates the date; out-of-range months or days give a meaningless count, never a
/// panic.
#[must_use]
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let (month, day) = (i64::from(month), i64::from(day));
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_index = (month + 9) % 12;
    let day_of_year = (153 * month_index + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// Go's `time.RFC3339Nano` layout in UTC for `unix_secs` seconds and `nanos` nanoseconds after
/// the Unix epoch: `2026-11-23T21:34:32.020916635Z`, with the fraction's trailing zeros trimmed
/// and no fraction at all when `nanos` is zero (then it equals `time.RFC3339`).
#[must_use]
pub fn format_rfc3339(unix_secs: i64, nanos: u32) -> String {
    let (year, month, day) = civil_from_days(unix_secs.div_euclid(86_400));
    let secs_of_day = unix_secs.rem_euclid(86_400);
    let mut out = format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}",
        secs_of_day / 3600,
        secs_of_day / 60 % 60,
        secs_of_day % 60
    );
    if nanos != 0 {
        let _ = write!(out, ".{nanos:09}");
        let trimmed = out.trim_end_matches('0').len();
        out.truncate(trimmed);
    }
    out.push('Z');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_days() {
        for (days, date) in [
            (0, (1970, 1, 1)),
            (-1, (1969, 12, 31)),
            (11_016, (2000, 2, 29)),
            (20_780, (2026, 11, 23)),
            (47_481, (2099, 12, 31)),
            (-719_528, (0, 1, 1)),
        ] {
            assert_eq!(civil_from_days(days), date, "day {days}");
            assert_eq!(days_from_civil(date.0, date.1, date.2), days, "{date:?}");
        }
    }

    #[test]
    fn rfc3339_like_go() {
        // Expected values produced with Go's t.UTC().Format(time.RFC3339Nano).
        let check = |secs: i64, nanos: u32, want: &str| {
            assert_eq!(format_rfc3339(secs, nanos), want, "{secs} {nanos}");
        };
        check(0, 0, "1970-01-01T00:00:00Z");
        check(1, 500_000_000, "1970-01-01T00:00:01.5Z");
        check(1_795_469_672, 20_916_635, "2026-11-23T21:34:32.020916635Z");
        check(1_709_208_000, 0, "2024-02-29T12:00:00Z");
        check(1_709_208_000, 10, "2024-02-29T12:00:00.00000001Z");
        check(-1, 0, "1969-12-31T23:59:59Z");
        check(-62_167_219_200, 0, "0000-01-01T00:00:00Z");
    }

    #[test]
    fn round_trips_over_eight_centuries() {
        let mut previous = civil_from_days(-200_000);
        for days in -199_999..=200_000 {
            let date = civil_from_days(days);
            assert_eq!(days_from_civil(date.0, date.1, date.2), days);
            assert!(date > previous, "{date:?} after {previous:?}");
            previous = date;
        }
    }
}
