//! The Stowage agent as a library: configuration, the protocol client, the poll and heartbeat
//! loops, the command executors (`exec`), the backup data path (`pipeline`), restores (`restore`)
//! and storage backends (`storage`). `main.rs` only parses arguments and maps errors to exit codes.
//!
//! The agent trusts nothing it receives: every command spec is re-validated before it runs.

pub mod client;
pub mod config;
pub mod dbconn;
pub mod exec;
pub mod paths;
pub mod pipeline;
pub mod poll;
pub mod report;
pub mod repository;
pub mod restore;
pub mod storage;
pub mod system;
