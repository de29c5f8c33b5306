//! Stowage's shared vocabulary: the API and agent-protocol types, the response envelope and error
//! codes, validated input types and pure domain decisions (login throttling, schedules later).
//!
//! This crate must stay pure — no I/O, no clock, no randomness — so that the Worker (wasm32) and the
//! agent (native) agree on every shape and every decision. Whatever needs "now" or a fresh id takes
//! it as a parameter.

pub mod api;
pub mod artifact;
pub mod commands;
pub mod databases;
pub mod envelope;
pub mod link;
pub mod nodes;
pub mod notifications;
pub mod protocol;
pub mod rclone;
pub mod recovery;
pub mod retention;
pub mod runs;
pub mod schedule;
pub mod secret;
pub mod settings;
pub mod status;
pub mod storage;
pub mod tasks;
pub mod throttle;
pub mod time;
pub mod validate;

pub use envelope::{Envelope, ErrorCode};
pub use secret::SecretString;
