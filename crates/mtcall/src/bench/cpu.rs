//! CPU time of processes, from `/proc` (user and system, in clock ticks of 10 ms): this
//! process, a child node, and every PostgreSQL process on the machine (the bench's database
//! server is the only one where it runs).

/// CPU seconds of process `pid` (`self` for this one).
pub fn of(pid: &str) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            // The fields after the command name, which is in parentheses.
            let rest = &s[s.rfind(')')? + 2..];
            let f: Vec<&str> = rest.split_whitespace().collect();
            Some((f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?) / 100.0)
        })
        .unwrap_or(0.0)
}

/// CPU seconds of this process.
pub fn own() -> f64 {
    of("self")
}

/// CPU seconds of every process named `postgres` (the postmaster, its backends and helpers),
/// and how many there are. A backend that exits between two readings takes its time with it;
/// the bench's connections stay open, so its own backends do not.
pub fn postgres() -> (f64, usize) {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return (0.0, 0);
    };
    let mut total = (0.0, 0);
    for entry in dir.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
        else {
            continue;
        };
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        if comm.trim() == "postgres" {
            total.0 += of(pid);
            total.1 += 1;
        }
    }
    total
}
