//! What a run cost, measured from the kernel's cgroup counters: CPU time and peak memory.
//!
//! A container's own cgroup is deleted by the runtime as soon as its process exits, before
//! the runner can read it. So each container is created under its own *parent* cgroup
//! (`CgroupParent = /atr-sandbox/<container name>`, [`Cgroups::parent`]): the kernel charges
//! a child's CPU time and memory to every ancestor, and the parent, which nobody else
//! deletes, keeps the totals after the child is gone. After the run the runner reads the
//! parent ([`Cgroups::measure`]) and removes it once the container is removed
//! ([`Cgroups::release`]); at start, parents whose container no longer exists (a crashed
//! run) are swept ([`Cgroups::sweep`]).
//!
//! | cgroup | CPU time | peak memory |
//! |---|---|---|
//! | v1 | `cpuacct.usage` (ns) | `memory.max_usage_in_bytes` |
//! | v2 | `cpu.stat` `usage_usec` | `memory.peak` |
//!
//! Only with the engine's `cgroupfs` driver (with `systemd`, parents must be slices that
//! systemd manages) and only when this process sees the host's cgroup tree (not inside a
//! container of its own) and may write it (it makes `atr-sandbox` in every hierarchy at
//! start, to be able to remove the parents): otherwise nothing is measured and the receipt's `cpu_ms` and
//! `peak_memory_bytes` are absent. The first run whose parent is not visible turns it off.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bollard::Docker;
use bollard::models::{SystemInfoCgroupDriverEnum, SystemInfoCgroupVersionEnum};
use tracing::{debug, info, warn};

/// The cgroup under which every per-container parent is made.
pub const PARENT_ROOT: &str = "atr-sandbox";
/// Time for the `docker info` call that tells the cgroup driver.
const INFO_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest counter file read, bytes (`cpu.stat` is a few hundred).
const MAX_COUNTER_FILE: usize = 4096;

/// CPU time and peak memory of one run (each absent when not measured).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Measured {
    /// CPU time of the container's processes, milliseconds.
    pub cpu_ms: Option<u64>,
    /// Peak memory of the container, bytes.
    pub peak_memory_bytes: Option<u64>,
}

#[derive(Debug)]
enum Layout {
    V1 {
        cpuacct: Option<PathBuf>,
        memory: Option<PathBuf>,
    },
    V2 {
        root: PathBuf,
    },
}

/// The host's cgroup mounts, when runs can be measured.
#[derive(Debug)]
pub struct Cgroups {
    layout: Layout,
    /// Every cgroup mount point (parents are made in each v1 hierarchy).
    mounts: Vec<PathBuf>,
    /// Turned off when a parent turned out not to be visible here.
    off: AtomicBool,
}

impl Cgroups {
    /// Asks the engine for its cgroup driver and version and finds the mounts; `None` when
    /// runs cannot be measured here (logged).
    pub async fn discover(docker: &Docker) -> Option<Self> {
        let info = match tokio::time::timeout(INFO_TIMEOUT, docker.info()).await {
            Ok(Ok(i)) => i,
            _ => {
                warn!("could not read `docker info`: CPU time and peak memory are not measured");
                return None;
            }
        };
        if info.cgroup_driver != Some(SystemInfoCgroupDriverEnum::CGROUPFS) {
            info!(driver = ?info.cgroup_driver, "cgroup driver is not cgroupfs: CPU time and peak memory are not measured");
            return None;
        }
        let v2 = info.cgroup_version == Some(SystemInfoCgroupVersionEnum::_2);
        let text = tokio::fs::read_to_string("/proc/self/mountinfo").await.ok()?;
        let Some(found) = Self::from_mountinfo(&text, v2) else {
            info!("no cgroup mounts visible: CPU time and peak memory are not measured");
            return None;
        };
        // Parents must be removable, or every run would leave one behind: a read-only
        // cgroup tree (systemd's ProtectControlGroups) or no right to write it turns
        // measuring off.
        for m in &found.mounts {
            if let Err(e) = tokio::fs::create_dir_all(m.join(PARENT_ROOT)).await {
                info!(mount = %m.display(), error = %e, "cannot write the cgroup tree: CPU time and peak memory are not measured");
                return None;
            }
        }
        Some(found)
    }

    /// Parses `/proc/self/mountinfo`; `v2` when the engine uses the unified hierarchy.
    fn from_mountinfo(text: &str, v2: bool) -> Option<Self> {
        let mut mounts = Vec::new();
        let (mut cpuacct, mut memory, mut unified) = (None, None, None);
        for line in text.lines() {
            // `id parent dev root mountpoint opts [optional…] - fstype source superopts`
            let Some((left, right)) = line.split_once(" - ") else {
                continue;
            };
            let left: Vec<&str> = left.split(' ').collect();
            let right: Vec<&str> = right.split(' ').collect();
            let (Some(root), Some(point), Some(fstype)) = (left.get(3), left.get(4), right.first()) else {
                continue;
            };
            if *root != "/" {
                continue;
            }
            let point = PathBuf::from(point);
            match *fstype {
                "cgroup" => {
                    let opts = right.get(2).copied().unwrap_or_default();
                    let has = |c: &str| opts.split(',').any(|o| o == c);
                    if has("cpuacct") && cpuacct.is_none() {
                        cpuacct = Some(point.clone());
                    }
                    if has("memory") && memory.is_none() {
                        memory = Some(point.clone());
                    }
                    mounts.push(point);
                }
                "cgroup2" => {
                    unified.get_or_insert_with(|| point.clone());
                    mounts.push(point);
                }
                _ => {}
            }
        }
        let layout = if v2 {
            Layout::V2 { root: unified? }
        } else {
            if cpuacct.is_none() && memory.is_none() {
                return None;
            }
            Layout::V1 { cpuacct, memory }
        };
        Some(Self {
            layout,
            mounts,
            off: AtomicBool::new(false),
        })
    }

    /// The `CgroupParent` for the container named `name`, unless measuring is off.
    pub fn parent(&self, name: &str) -> Option<String> {
        (!self.off.load(Ordering::Relaxed)).then(|| format!("/{PARENT_ROOT}/{name}"))
    }

    /// Reads the totals of the parent of container `name` (after its process exited or was
    /// killed).
    pub async fn measure(&self, name: &str) -> Measured {
        let rel = Path::new(PARENT_ROOT).join(name);
        let (cpu, mem) = match &self.layout {
            Layout::V1 { cpuacct, memory } => {
                let cpu = match cpuacct {
                    Some(m) => read_counter(&m.join(&rel).join("cpuacct.usage"))
                        .await
                        .map(|ns| ns / 1_000_000),
                    None => None,
                };
                let mem = match memory {
                    Some(m) => read_counter(&m.join(&rel).join("memory.max_usage_in_bytes")).await,
                    None => None,
                };
                (cpu, mem)
            }
            Layout::V2 { root } => {
                let dir = root.join(&rel);
                let cpu = read_file(&dir.join("cpu.stat")).await.and_then(|t| {
                    t.lines()
                        .find_map(|l| l.strip_prefix("usage_usec "))
                        .and_then(|v| v.trim().parse::<u64>().ok())
                        .map(|us| us / 1000)
                });
                (cpu, read_counter(&dir.join("memory.peak")).await)
            }
        };
        if cpu.is_none() && mem.is_none() && !self.off.swap(true, Ordering::Relaxed) {
            warn!(
                parent = %rel.display(),
                "cannot read the sandbox's parent cgroup (is atrd inside a container?): CPU time and peak memory are no longer measured"
            );
        }
        Measured {
            cpu_ms: cpu,
            peak_memory_bytes: mem,
        }
    }

    /// Removes the parent of container `name` in every hierarchy (after the container was
    /// removed; a parent still holding a cgroup is left, and logged).
    pub async fn release(&self, name: &str) {
        let rel = Path::new(PARENT_ROOT).join(name);
        for m in &self.mounts {
            match tokio::fs::remove_dir(m.join(&rel)).await {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    debug!(dir = %m.join(&rel).display(), error = %e, "could not remove a sandbox parent cgroup")
                }
            }
        }
    }
}

impl Cgroups {
    /// Removes every parent under [`PARENT_ROOT`] whose container name is not in `live`.
    pub async fn sweep(&self, live: &std::collections::HashSet<String>) {
        let mut removed = 0usize;
        for m in &self.mounts {
            let Ok(mut dir) = tokio::fs::read_dir(m.join(PARENT_ROOT)).await else {
                continue;
            };
            while let Ok(Some(e)) = dir.next_entry().await {
                let name = e.file_name().to_string_lossy().into_owned();
                if name.starts_with("atr-")
                    && !live.contains(&name)
                    && tokio::fs::remove_dir(e.path()).await.is_ok()
                {
                    removed += 1;
                }
            }
        }
        if removed > 0 {
            info!(removed, "removed sandbox parent cgroups left by earlier runs");
        }
    }
}

async fn read_file(path: &Path) -> Option<String> {
    let bytes = tokio::fs::read(path).await.ok()?;
    (bytes.len() <= MAX_COUNTER_FILE).then(|| String::from_utf8_lossy(&bytes).into_owned())
}

async fn read_counter(path: &Path) -> Option<u64> {
    read_file(path).await?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const V1: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
41 31 0:38 /docker/abc /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
";

    #[test]
    fn v1_mounts_are_found_and_nested_roots_skipped() {
        let c = Cgroups::from_mountinfo(V1, false).unwrap();
        match &c.layout {
            Layout::V1 { cpuacct, memory } => {
                assert_eq!(cpuacct.as_deref(), Some(Path::new("/sys/fs/cgroup/cpuacct")));
                assert_eq!(memory.as_deref(), Some(Path::new("/sys/fs/cgroup/memory")));
            }
            Layout::V2 { .. } => panic!("v1 expected"),
        }
        assert_eq!(c.mounts.len(), 4, "{:?}", c.mounts);
        assert_eq!(c.parent("atr-1").as_deref(), Some("/atr-sandbox/atr-1"));
    }

    #[test]
    fn v2_needs_the_unified_mount() {
        let c = Cgroups::from_mountinfo(V1, true).unwrap();
        assert!(matches!(&c.layout, Layout::V2 { root } if root == Path::new("/sys/fs/cgroup/unified")));
        assert!(Cgroups::from_mountinfo("1 0 0:1 / / rw - ext4 /dev/sda rw", true).is_none());
        assert!(Cgroups::from_mountinfo("1 0 0:1 / / rw - ext4 /dev/sda rw", false).is_none());
    }
}
