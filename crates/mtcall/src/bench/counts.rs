//! `--count`: what the node processes did while a scenario measured, counted by `perf stat`
//! attached to them — system calls (`raw_syscalls:sys_enter`), context switches (each one a
//! thread that slept and was woken), and calls to the C allocator (`malloc`, `realloc`,
//! `calloc`, through uprobes on libc, which Rust's default allocator calls). Exact counts,
//! divided by the operations measured; the counting slows the node, so rates measured with it
//! are not reported against baselines. Needs `perf` and root.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

/// The events counted, by the names printed.
const EVENTS: [(&str, &str); 5] = [
    ("raw_syscalls:sys_enter", "system calls"),
    ("context-switches", "context switches"),
    ("probe_libc:malloc", "malloc"),
    ("probe_libc:realloc", "realloc"),
    ("probe_libc:calloc", "calloc"),
];

/// The system calls a node makes most, counted one by one: sockets, the database's WAL
/// writes and reads, its locks, and waiting.
const SYSCALLS: [&str; 8] = [
    "sendto",
    "recvfrom",
    "pwrite64",
    "pread64",
    "fcntl",
    "fsync",
    "futex",
    "epoll_wait",
];

/// The tracepoint counting entries into system call `name`.
fn syscall_event(name: &str) -> String {
    format!("syscalls:sys_enter_{name}")
}

/// `perf stat` attached to some processes.
pub struct Counting {
    perf: Child,
    output: PathBuf,
}

/// The C library Rust's allocator calls into (the machine's own, as `ldconfig` lists it).
fn libc_path() -> Result<String, String> {
    let out = Command::new("ldconfig")
        .arg("-p")
        .output()
        .map_err(|e| format!("ldconfig: {e}"))?;
    let listing = String::from_utf8_lossy(&out.stdout).into_owned();
    let libcs: Vec<&str> = listing
        .lines()
        .filter(|l| l.trim_start().starts_with("libc.so.6 "))
        .collect();
    libcs
        .iter()
        .find(|l| l.contains("x86-64"))
        .or(libcs.first())
        .and_then(|l| l.rsplit(" => ").next())
        .map(str::to_owned)
        .ok_or_else(|| "libc.so.6 not found by ldconfig".into())
}

impl Counting {
    /// Starts counting in the processes `pids`.
    pub fn start(pids: &[u32]) -> Result<Counting, String> {
        if pids.is_empty() {
            return Err("--count counts node processes: add --node-processes".into());
        }
        let libc = libc_path()?;
        for function in ["malloc", "realloc", "calloc"] {
            // Fails harmlessly when the probe is already there.
            let _ = Command::new("perf")
                .args(["probe", "-q", "-x", &libc, function])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
        let output = std::env::temp_dir().join(format!("mtcall-count-{}.csv", std::process::id()));
        let events: Vec<String> = EVENTS
            .iter()
            .map(|(e, _)| e.to_string())
            .chain(SYSCALLS.iter().map(|s| syscall_event(s)))
            .collect();
        let pids: Vec<String> = pids.iter().map(u32::to_string).collect();
        let perf = Command::new("perf")
            .args([
                "stat",
                "-x",
                ",",
                "-e",
                &events.join(","),
                "-p",
                &pids.join(","),
            ])
            .arg("-o")
            .arg(&output)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("perf: {e}"))?;
        // perf attaches before it counts anything; give it a moment.
        std::thread::sleep(std::time::Duration::from_millis(300));
        Ok(Counting { perf, output })
    }

    /// Stops counting and prints each count per `operations` of `what`.
    pub fn finish(mut self, operations: u64, what: &str) -> Result<(), String> {
        let _ = Command::new("kill")
            .args(["-INT", &self.perf.id().to_string()])
            .status();
        let _ = self.perf.wait();
        let text = std::fs::read_to_string(&self.output)
            .map_err(|e| format!("{}: {e}", self.output.display()))?;
        let _ = std::fs::remove_file(&self.output);
        let count = |event: &str| -> Option<f64> {
            text.lines()
                .find(|l| l.split(',').nth(2) == Some(event))
                .and_then(|l| l.split(',').next()?.parse().ok())
        };
        let per = |n: f64| n / operations.max(1) as f64;
        let mut parts = Vec::new();
        let mut allocations = 0.0;
        for (event, name) in EVENTS {
            match count(event) {
                Some(n) => {
                    if event.starts_with("probe_libc") {
                        allocations += n;
                    }
                    parts.push(format!("{name} {:.2}", per(n)));
                }
                None => parts.push(format!("{name} not counted")),
            }
        }
        let by_kind: Vec<String> = SYSCALLS
            .iter()
            .filter_map(|s| {
                let n = count(&syscall_event(s))?;
                Some(format!("{s} {:.2}", per(n)))
            })
            .collect();
        println!(
            "counted in the node processes, per {what}: {}; allocations (malloc + realloc + calloc) {:.2}",
            parts.join(", "),
            per(allocations)
        );
        println!("  system calls by kind, per {what}: {}", by_kind.join(", "));
        Ok(())
    }
}
