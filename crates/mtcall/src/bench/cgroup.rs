//! CPU caps for node processes: each node in a cgroup (v1 `cpu` controller, as root) of its own
//! whose quota is a fraction of one core, so that on a small machine the nodes — not the
//! database or the load generator — bind, and adding a node adds capacity the bench can see.

use std::path::{Path, PathBuf};

/// Where the cgroup v1 `cpu` controller is mounted.
const CPU_CONTROLLER: &str = "/sys/fs/cgroup/cpu";
/// The scheduling period the quota is a share of, in microseconds.
const PERIOD_US: u64 = 100_000;

/// A cgroup holding one process, removed when dropped (after its process has exited).
pub struct CpuCap {
    dir: PathBuf,
}

impl CpuCap {
    /// Moves process `pid` (all its threads) into a new cgroup named `name` that may use
    /// `cores` of a core's time (0.25: a quarter of one core).
    pub fn apply(name: &str, pid: u32, cores: f64) -> Result<CpuCap, String> {
        if !(0.01..=64.0).contains(&cores) {
            return Err(format!(
                "a node's CPU cap must be 0.01–64 cores, not {cores}"
            ));
        }
        let root = Path::new(CPU_CONTROLLER);
        if !root.join("cpu.cfs_quota_us").exists() {
            return Err(format!(
                "--node-cpu needs the cgroup v1 cpu controller at {CPU_CONTROLLER} (and root)"
            ));
        }
        let dir = root.join(name);
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let cap = CpuCap { dir };
        let quota = (cores * PERIOD_US as f64).round() as u64;
        cap.write("cpu.cfs_period_us", &PERIOD_US.to_string())?;
        cap.write("cpu.cfs_quota_us", &quota.to_string())?;
        cap.write("cgroup.procs", &pid.to_string())?;
        Ok(cap)
    }

    fn write(&self, file: &str, value: &str) -> Result<(), String> {
        let path = self.dir.join(file);
        std::fs::write(&path, value).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// How many times the group was held back for having used its quota.
    pub fn throttled(&self) -> u64 {
        std::fs::read_to_string(self.dir.join("cpu.stat"))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("nr_throttled ")?.trim().parse().ok())
            })
            .unwrap_or(0)
    }
}

impl Drop for CpuCap {
    fn drop(&mut self) {
        // Only an empty cgroup can be removed; its process has been waited for by now.
        let _ = std::fs::remove_dir(&self.dir);
    }
}
