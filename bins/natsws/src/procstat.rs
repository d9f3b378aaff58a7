//! The process's own figures from Linux `/proc/self` (proc(5)): resident memory, CPU time,
//! open and allowed file descriptors. `/varz` shows memory and average CPU as nats-server
//! does; `/metrics` shows them as Prometheus' conventional `process_*` series. Elsewhere than
//! Linux every figure reads as 0.

use std::time::Duration;

/// Clock ticks per second of `/proc/self/stat`'s `utime` and `stime` (`sysconf(_SC_CLK_TCK)`,
/// which Linux fixes at 100 for user space).
const CLOCK_TICKS_PER_SEC: f64 = 100.0;

/// User plus system CPU time spent so far.
pub(crate) fn cpu_time() -> Duration {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return Duration::ZERO;
    };
    Duration::from_secs_f64(cpu_ticks(&stat) / CLOCK_TICKS_PER_SEC)
}

/// `utime + stime` of a `/proc/<pid>/stat` line, in clock ticks.
fn cpu_ticks(stat: &str) -> f64 {
    // Fields after the command name, which is in parentheses and may contain spaces.
    let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
        return 0.0;
    };
    let mut fields = rest.split_whitespace();
    // `rest` starts at field 3 (state); utime and stime are fields 14 and 15.
    let utime = fields.nth(11).and_then(|v| v.parse::<f64>().ok());
    let stime = fields.next().and_then(|v| v.parse::<f64>().ok());
    utime.unwrap_or(0.0) + stime.unwrap_or(0.0)
}

/// Average CPU use since start, in % of one core (what nats-server's `ps -o pcpu` shows),
/// rounded to one decimal.
pub(crate) fn cpu_percent(uptime: Duration) -> f64 {
    let secs = uptime.as_secs_f64();
    if secs <= 0.0 {
        return 0.0;
    }
    (cpu_time().as_secs_f64() / secs * 1000.0).round() / 10.0
}

/// Resident set size (`VmRSS` of `/proc/self/status`).
pub(crate) fn rss_bytes() -> u64 {
    status_kib("VmRSS:")
}

/// Virtual memory size (`VmSize` of `/proc/self/status`).
pub(crate) fn virtual_bytes() -> u64 {
    status_kib("VmSize:")
}

fn status_kib(key: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| kib_field(&s, key))
        .unwrap_or(0)
}

/// A `Key:   1234 kB` line of `/proc/<pid>/status`, in bytes.
fn kib_field(status: &str, key: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with(key))?;
    let kib: u64 = line
        .strip_prefix(key)?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    Some(kib.saturating_mul(1024))
}

/// File descriptors open now (the entries of `/proc/self/fd`, less the one reading it).
pub(crate) fn open_fds() -> u64 {
    std::fs::read_dir("/proc/self/fd").map_or(0, |dir| {
        u64::try_from(dir.count())
            .unwrap_or(u64::MAX)
            .saturating_sub(1)
    })
}

/// The soft limit on open file descriptors (`Max open files` of `/proc/self/limits`); 0 when
/// unknown or unlimited.
pub(crate) fn max_fds() -> u64 {
    std::fs::read_to_string("/proc/self/limits")
        .ok()
        .as_deref()
        .and_then(soft_open_files_limit)
        .unwrap_or(0)
}

fn soft_open_files_limit(limits: &str) -> Option<u64> {
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.strip_prefix("Max open files")?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields() {
        // A command name with spaces and a parenthesis, as proc(5) allows.
        let stat = "4242 (nat s)ws) S 1 4242 4242 0 -1 4194560 123 0 0 0 250 75 0 0 20 0 2 0 100 0";
        assert!((cpu_ticks(stat) - 325.0).abs() < f64::EPSILON);
        assert!(cpu_ticks("garbage").abs() < f64::EPSILON);
    }

    #[test]
    fn status_file() {
        let status = "Name:\tnatsws\nVmSize:\t  123456 kB\nVmRSS:\t    2048 kB\n";
        assert_eq!(kib_field(status, "VmRSS:"), Some(2048 * 1024));
        assert_eq!(kib_field(status, "VmSize:"), Some(123_456 * 1024));
        assert_eq!(kib_field(status, "VmSwap:"), None);
    }

    #[test]
    fn limits_file() {
        let limits = "Limit                     Soft Limit           Hard Limit           Units\nMax cpu time              unlimited            unlimited            seconds\nMax open files            1024                 524288               files\n";
        assert_eq!(soft_open_files_limit(limits), Some(1024));
        assert_eq!(
            soft_open_files_limit("Max open files  unlimited unlimited files\n"),
            None
        );
    }

    #[test]
    fn this_process() {
        assert!(rss_bytes() > 0);
        assert!(virtual_bytes() >= rss_bytes());
        assert!(open_fds() >= 3, "stdin, stdout, stderr at least");
        assert!(max_fds() >= open_fds());
    }
}
