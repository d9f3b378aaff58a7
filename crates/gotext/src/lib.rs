//! The few text formats of Go's standard library that nats-server's messages expose, reproduced
//! byte for byte, in one place for every natsws crate that has to print them.
//!
//! nats-server is written in Go, so its error texts, log lines, monitoring JSON and config
//! diagnostics contain what Go's `strconv.Quote` (`%q`) and `time.Duration.String` print, and
//! dates from Go's calendar. The broker, the config parser, the handshake and the binary all
//! reproduce such texts; this crate is their shared, dependency-free home, so that the four
//! crates stay independent of each other.
//!
//! What it deliberately does not do: no I/O, no clock (times are arguments), no parsing, and no
//! formats that only one crate prints (those stay with that crate).
//!
//! Main items:
//! - [`quote`]: `strconv.Quote`, what `fmt.Sprintf("%q", s)` prints for a string or byte slice.
//! - [`format_duration`] and [`format_std_duration`]: `time.Duration.String`.
//! - [`civil_from_days`] and [`days_from_civil`]: days since 1970-01-01 to and from a proleptic
//!   Gregorian date, as Go's `time` package counts them; [`format_rfc3339`]: Go's
//!   `time.RFC3339Nano` layout in UTC.
//!
//! ```
//! use std::time::Duration;
//!
//! assert_eq!(gotext::quote("foo\n\"bar\""), r#""foo\n\"bar\"""#);
//! assert_eq!(gotext::quote(b"\xff"), r#""\xff""#);
//! assert_eq!(gotext::format_duration(-1_500_000_000), "-1.5s");
//! assert_eq!(gotext::format_std_duration(Duration::from_secs(3_723)), "1h2m3s");
//! assert_eq!(gotext::civil_from_days(11_016), (2000, 2, 29));
//! assert_eq!(gotext::days_from_civil(2000, 2, 29), 11_016);
//! assert_eq!(gotext::format_rfc3339(951_825_600, 250_000_000), "2000-02-29T12:00:00.25Z");
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![warn(clippy::print_stdout, clippy::print_stderr)]
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation
)]

mod calendar;
mod duration;
mod quote;

pub use calendar::{civil_from_days, days_from_civil, format_rfc3339};
pub use duration::{format_duration, format_std_duration};
pub use quote::quote;
