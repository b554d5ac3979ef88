//! Gives the heap pages that freed requests leave behind back to the
//! kernel, so a long-running `serve` keeps the RSS its live heap needs.
//!
//! glibc's `free` returns memory to the kernel only from the top of an
//! arena; a free chunk in the middle keeps its pages resident until a later
//! allocation reuses them. Every tokio worker and blocking thread allocates
//! from its own arena, so under a steady, mixed load (requests, sandboxes,
//! JSON of every size) those pages pile up: in the soak test
//! (`scripts/soak.sh`) one `malloc_trim(0)` after 2.5 minutes gave back
//! 6.7 MiB of 71 MiB of anonymous memory (docs/RELIABILITY.md; the slower
//! creep that soak also shows is outside the heap). `malloc_trim` walks each
//! arena's free chunks and `madvise`s their whole pages away: well under a
//! millisecond for a heap of this size, off the async workers.

use std::time::Duration;

/// How often freed pages are given back.
const EVERY: Duration = Duration::from_secs(30);

/// Trims the heap every [`EVERY`] until aborted (a no-op task where the
/// allocator is not glibc's).
pub(super) fn spawn() -> tokio::task::JoinHandle<()> {
    tokio::spawn(async {
        loop {
            tokio::time::sleep(EVERY).await;
            let _ = tokio::task::spawn_blocking(trim).await;
        }
    })
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn trim() {
    // SAFETY: `malloc_trim` only releases memory the allocator holds free;
    // it takes each arena's lock, so it is safe alongside other threads.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn trim() {}
