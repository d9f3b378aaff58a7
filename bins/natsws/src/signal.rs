//! `--signal <cmd>[=<pid|pidfile>]`: signal a running server (nats-server's `server/signal.go`
//! `ProcessSignal`).

/// Sends the signal named by `arg` and returns an error text for `prog: <err>`.
pub(crate) fn send(prog: &str, arg: &str) -> Result<(), String> {
    let parts: Vec<&str> = arg.split('=').collect();
    if parts.len() > 2 {
        return Err(format!("invalid signal parameters: {parts:?}"));
    }
    let cmd = parts.first().copied().unwrap_or("");
    let sig = match cmd {
        "stop" => "KILL",
        "quit" => "INT",
        "term" => "TERM",
        "reopen" => "USR1",
        "reload" => "HUP",
        "ldm" => "USR2",
        other => return Err(format!("unknown signal \"{other}\"")),
    };
    let pid = match parts.get(1) {
        Some(p) => resolve_pid(p)?,
        None => find_process(prog)?,
    };
    let status = std::process::Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status()
        .map_err(|e| format!("kill: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("failed to signal process {pid}"))
    }
}

fn resolve_pid(p: &str) -> Result<u32, String> {
    let text = match std::fs::read_to_string(p) {
        Ok(contents) => contents,
        Err(_) => p.to_owned(),
    };
    text.trim()
        .parse::<u32>()
        .map_err(|_| format!("invalid pid: {}", text.trim()))
}

/// Finds other processes with our executable name (what `pgrep` does for nats-server).
fn find_process(prog: &str) -> Result<u32, String> {
    let me = std::process::id();
    let mut pids = Vec::new();
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for entry in dir.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<u32>().ok())
            else {
                continue;
            };
            if pid == me {
                continue;
            }
            let comm = std::fs::read_to_string(entry.path().join("comm")).unwrap_or_default();
            // comm is truncated to 15 bytes.
            let short: String = prog.chars().take(15).collect();
            if comm.trim_end() == short {
                pids.push(pid);
            }
        }
    }
    pids.sort_unstable();
    match pids.as_slice() {
        [] => Err(format!("no {prog} processes running")),
        [one] => Ok(*one),
        many => {
            let list: Vec<String> = many.iter().map(u32::to_string).collect();
            Err(format!(
                "multiple {prog} processes running:\n{}",
                list.join("\n")
            ))
        }
    }
}
