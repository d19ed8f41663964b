//! Keeps glibc's malloc from holding on to sled's freed log buffers (issue #8).
//!
//! sled writes its log through one 512 KiB buffer per segment, allocated with the global allocator and
//! freed once written: a busy store allocates and frees hundreds of them per second. glibc serves
//! allocations of 128 KiB or more with `mmap`, but raises that threshold to the size of every such block
//! freed (its "dynamic mmap threshold"), so after the first buffer all of them come from the malloc heap,
//! where the small long-lived allocations sled makes in between (page-table entries, cached records)
//! pin the pages they leave behind. Measured with the capacity example at 1,000,000 runs: resident
//! 268 MiB, of which `malloc_trim` gives back about 106 MiB. Fixing the threshold at glibc's default of
//! 128 KiB turns that dynamic behaviour off: every log buffer is its own mapping, returned to the system
//! when freed (one `mmap`/`munmap` pair per 512 KiB segment of log, a few hundred runs' worth).
//!
//! It is process-wide, so it is applied once, at the first open, and not at all when the operator set
//! `MALLOC_MMAP_THRESHOLD_` (glibc has then applied that value, which also turns the dynamic threshold
//! off). Other allocators (musl, or a `#[global_allocator]` in the binary) are not affected.

/// glibc's default (and initial) mmap threshold.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MMAP_THRESHOLD: libc::c_int = 128 * 1024;

/// Fixes glibc's mmap threshold for this process (once; a no-op elsewhere).
pub(crate) fn pin_mmap_threshold() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| {
            if std::env::var_os("MALLOC_MMAP_THRESHOLD_").is_some() {
                return;
            }
            // SAFETY: mallopt only sets an allocator parameter (under the allocator's own lock); it takes
            // no pointers and may be called at any time.
            let ok = unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD) };
            if ok != 1 {
                tracing::warn!("could not fix glibc's mmap threshold; resident memory may grow");
            }
        });
    }
}
