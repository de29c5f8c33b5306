//! The Stowage agent as a library: configuration, the protocol client, the poll and heartbeat
//! loops, the command executors (`exec`), the backup data path (`pipeline`), restores (`restore`)
//! and storage backends (`storage`). `main.rs` only parses arguments and maps errors to exit codes.
//!
//! The agent trusts nothing it receives: every command spec is re-validated before it runs.

pub mod client;
pub mod config;
pub mod dbconn;
pub mod exec;
pub mod link;
pub mod paths;
pub mod pipeline;
pub mod poll;
pub mod report;
pub mod repository;
pub mod restore;
pub mod storage;
pub mod system;

/// Caps glibc's malloc at two arenas; call it first thing in `main`, before any thread starts.
/// rustic_core's backup allocates blob and pack buffers of megabytes on several threads, and with
/// glibc's default (eight arenas a core, each keeping what it freed) a 1 GiB first backup peaked
/// at 135–146 MiB resident where restic needs 138; with two arenas, 91–119 MiB at the same speed
/// (`make bench`). Fixing glibc's mmap or trim thresholds instead doubled the backup's time, and
/// mimalloc kept 212–231 MiB.
#[allow(unsafe_code)]
pub fn cap_malloc_arenas() {
    // SAFETY: mallopt only sets a parameter of glibc's allocator; it is called before the
    // process starts any thread, and a refusal (0) leaves glibc's default in place.
    unsafe {
        nix::libc::mallopt(nix::libc::M_ARENA_MAX, 2);
    }
}
