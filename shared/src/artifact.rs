//! The archive artifact's naming and the manifest stored beside it, so that a target describes
//! its backups without the control plane.

use serde::{Deserialize, Serialize};

/// The manifest stored beside every artifact (`<artifact>.manifest.json`), so that a target
/// describes its backups without the control plane.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BackupManifest {
    /// `stowage-backup/1`.
    pub format: String,
    pub task_id: i64,
    pub task_name: String,
    /// The task's type (`file` when absent: the first manifests were of file tasks only).
    #[serde(rename = "type", default = "file_type")]
    pub kind: String,
    pub record_id: i64,
    /// The agent's host name.
    pub host: String,
    /// What was read: paths (files, an SQLite file) or `engine://user@host:port/database`.
    pub sources: Vec<String>,
    pub excludes: Vec<String>,
    pub compression: crate::tasks::Compression,
    /// The artifact's file name, beside this manifest.
    pub artifact: String,
    pub bytes: u64,
    pub sha256: String,
    pub files: u64,
    pub source_bytes: u64,
    pub started_at: String,
    pub finished_at: String,
    /// Database dumps: where each database lies in the uncompressed artifact.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sections: Vec<crate::databases::DumpSection>,
}

fn file_type() -> String {
    "file".to_owned()
}

pub const MANIFEST_FORMAT: &str = "stowage-backup/1";

/// Where an artifact's manifest is stored.
pub fn manifest_path(artifact: &str) -> String {
    format!("{artifact}.manifest.json")
}
