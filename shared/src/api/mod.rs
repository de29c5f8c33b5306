//! The HTTP API, defined once for every side that speaks it: one struct per request and response
//! body, grouped by resource, and the route paths. Field names are camelCase JSON, times RFC 3339
//! UTC strings (see [`crate::time`]).
//!
//! Naming: `…Request` is a body a client sends; `…Output` is a resource as the API shows it (with
//! `…Summary` for the list form and `…Detail` for the single form where they differ); other
//! answers are named for what they say (`Deleted`, `StorageTestResult`, `DashboardStats`).
//! The agent's side of the wire is [`crate::protocol`].

pub mod auth;
pub mod dashboard;
pub mod nodes;
pub mod notifications;
pub mod records;
pub mod restores;
pub mod routes;
pub mod storage;
pub mod system;
pub mod tasks;

pub use auth::*;
pub use dashboard::*;
pub use nodes::*;
pub use notifications::*;
pub use records::*;
pub use restores::*;
pub use storage::*;
pub use system::*;
pub use tasks::*;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Deleted {
    pub deleted: bool,
}

/// One page of a list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Page<T> {
    pub items: Vec<T>,
    pub total: u64,
    pub page: u64,
    pub page_size: u64,
}

/// `PUT /api/backup/tasks/:id/toggle`: the state to set; absent flips it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ToggleRequest {
    #[serde(default)]
    pub enabled: Option<bool>,
}

/// `#[serde(default = "yes")]`: a flag that is on unless a client says otherwise.
pub(crate) fn yes() -> bool {
    true
}
