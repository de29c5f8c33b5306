//! Operations: what the control plane does, as functions of the store, the sealer and the clock.
//! Handlers in `api` parse a request, call one of these, and answer; the cron tick calls them too.
//! Nothing here knows about HTTP requests, and nothing here calls a handler.

pub mod commands;
pub mod downloads;
pub mod fleet;
pub mod prune;
pub mod restores;
pub mod runs;
pub mod settle;
pub mod signin;
pub mod targets;
pub mod tasks;
pub mod verifies;
