//! Measurements shared by the `load` and `capacity` examples (and the store's `run_memory` example).

use std::path::Path;

/// A size field of `/proc/self/status` (`"VmRSS:"`, `"RssAnon:"`, …) in MiB.
fn status_mib(field: &str) -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// Resident set size of this process in MiB.
pub fn rss_mib() -> f64 {
    status_mib("VmRSS:")
}

/// Anonymous resident memory (heap, stacks; not the mapped binary) in MiB.
#[allow(dead_code)]
pub fn anon_mib() -> f64 {
    status_mib("RssAnon:")
}

/// When the environment variable `var` is set, returns the allocator's free memory to the system
/// (glibc's `malloc_trim`) before a reading, which tells memory in use from memory freed but kept.
#[allow(dead_code)]
pub fn trim_if(var: &str) {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os(var).is_some() {
        unsafe extern "C" {
            fn malloc_trim(pad: usize) -> i32;
        }
        // SAFETY: malloc_trim takes no pointers and may be called at any time.
        unsafe {
            malloc_trim(0);
        }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    let _ = var;
}

/// Bytes of all files under `dir`.
pub fn dir_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_bytes(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}
