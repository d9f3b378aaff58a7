//! What the kernel says about a process: CPU time, resident memory and the open-files limit
//! (all from `/proc`, Linux only).

use std::process::Command;
use std::time::Duration;

/// Clock ticks per second of `/proc/<pid>/stat` times (`getconf CLK_TCK`, 100 on Linux).
fn clock_ticks() -> u64 {
    static TICKS: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .filter(|t| *t > 0)
            .unwrap_or(100)
    })
}

/// User plus system CPU time of a process, all threads (`/proc/<pid>/stat` fields 14 and 15;
/// `pid` `None` is this process).
pub(crate) fn cpu_time(pid: Option<u32>) -> Result<Duration, String> {
    let path = match pid {
        Some(pid) => format!("/proc/{pid}/stat"),
        None => "/proc/self/stat".to_owned(),
    };
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
    let ticks = parse_stat_cpu(&text).ok_or_else(|| format!("{path}: unexpected format"))?;
    let hz = clock_ticks();
    Ok(Duration::from_secs(ticks / hz) + Duration::from_nanos((ticks % hz) * 1_000_000_000 / hz))
}

/// utime + stime in clock ticks from the text of `/proc/<pid>/stat`. The command name (field 2)
/// may contain spaces and parentheses, so fields are counted from its closing `)`.
fn parse_stat_cpu(stat: &str) -> Option<u64> {
    let rest = stat.get(stat.rfind(')')? + 1..)?;
    let mut fields = rest.split_ascii_whitespace();
    // After the name: state (3), ppid (4), ... utime is field 14, stime 15.
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// Resident memory of a process in bytes (`VmRSS` of `/proc/<pid>/status`).
pub(crate) fn rss_bytes(pid: u32) -> Result<u64, String> {
    let path = format!("/proc/{pid}/status");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
    status_kib(&text, "VmRSS:")
        .map(|kib| kib * 1024)
        .ok_or_else(|| format!("{path}: no VmRSS"))
}

fn status_kib(status: &str, key: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with(key))?;
    line.get(key.len()..)?
        .split_ascii_whitespace()
        .next()?
        .parse()
        .ok()
}

/// The soft and hard open-files limits of a process (`/proc/<pid>/limits`; `None` is this
/// process). `u64::MAX` stands for unlimited.
pub(crate) fn open_files_limit(pid: Option<u32>) -> Result<(u64, u64), String> {
    let path = match pid {
        Some(pid) => format!("/proc/{pid}/limits"),
        None => "/proc/self/limits".to_owned(),
    };
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
    parse_open_files(&text).ok_or_else(|| format!("{path}: no 'Max open files' line"))
}

fn parse_open_files(limits: &str) -> Option<(u64, u64)> {
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    let mut values = line
        .get("Max open files".len()..)?
        .split_ascii_whitespace()
        .map(|v| {
            if v == "unlimited" {
                Some(u64::MAX)
            } else {
                v.parse().ok()
            }
        });
    Some((values.next()??, values.next()??))
}

/// Raises this process's soft open-files limit to its hard limit (with `prlimit`, so that no
/// `unsafe` system call is needed here). Returns the soft limit in force afterwards. Children
/// started later (the servers) inherit it.
pub(crate) fn raise_open_files_limit() -> u64 {
    let Ok((soft, hard)) = open_files_limit(None) else {
        return 0;
    };
    if soft < hard {
        let limit = if hard == u64::MAX {
            "unlimited".to_owned()
        } else {
            hard.to_string()
        };
        let _ = Command::new("prlimit")
            .args(["--pid", &std::process::id().to_string()])
            .arg(format!("--nofile={limit}:{limit}"))
            .output();
    }
    open_files_limit(None).map_or(soft, |(soft, _)| soft)
}

/// The 1-minute load average.
pub(crate) fn load_average() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_ascii_whitespace()
        .next()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_cpu_ticks_after_the_command_name() {
        let stat = "4242 (nats server) (x) S 1 4242 4242 0 -1 4194560 1150 0 0 0 \
                    250 75 0 0 20 0 9 0 1234 1000000 500 18446744073709551615";
        assert_eq!(parse_stat_cpu(stat), Some(325));
        assert_eq!(parse_stat_cpu("1 (x) S 1"), None);
    }

    #[test]
    fn reads_this_process() {
        assert!(cpu_time(None).is_ok());
        assert!(rss_bytes(std::process::id()).unwrap() > 0);
        assert!(open_files_limit(None).unwrap().0 > 0);
    }

    #[test]
    fn reads_status_and_limits() {
        let status = "Name:\tx\nVmPeak:\t  2000 kB\nVmRSS:\t  1234 kB\n";
        assert_eq!(status_kib(status, "VmRSS:"), Some(1234));
        let limits = "Limit                     Soft Limit           Hard Limit           Units     \n\
                      Max open files            20000                20000                files     \n";
        assert_eq!(parse_open_files(limits), Some((20000, 20000)));
        let unlimited =
            "Max open files            unlimited            unlimited            files\n";
        assert_eq!(parse_open_files(unlimited), Some((u64::MAX, u64::MAX)));
    }
}
