//! The archive artifact's naming (where a run stores it, and what its name says about how it was
//! written) and the manifest stored beside it, so that a target describes its backups without the
//! control plane.

use crate::tasks::{Compression, TaskType};
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

/// The directory of a storage target's restic repository, under the target's root (its base
/// path, bucket prefix or remote folder): one repository per target, shared by every repository
/// task and node that writes there.
pub const REPOSITORY_DIR: &str = "restic";

/// Where an artifact's manifest is stored.
pub fn manifest_path(artifact: &str) -> String {
    format!("{artifact}.manifest.json")
}

/// A task name as a path segment: lowercase letters and digits, runs of anything else as one `-`,
/// at most 48 characters; `task` when nothing is left.
pub fn slug(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    let out: String = out.trim_end_matches('-').chars().take(48).collect();
    let out = out.trim_end_matches('-');
    if out.is_empty() {
        "task".to_owned()
    } else {
        out.to_owned()
    }
}

/// Where a run's artifact goes under a target's root:
/// `<slug>/<YYYY>/<MM>/<DD>/<slug>-<YYYYMMDDTHHMMSSZ>-r<record>.<tar|sql|sqlite>[.zst]` (UTC), so
/// a target's listing sorts by task and time and every run has its own object.
pub fn artifact_path(
    task_name: &str,
    record_id: i64,
    started: crate::time::Timestamp,
    kind: TaskType,
    compression: Compression,
) -> String {
    let slug = slug(task_name);
    let ext = match compression {
        Compression::None => kind.extension().to_owned(),
        Compression::Zstd { .. } => format!("{}.zst", kind.extension()),
    };
    format!(
        "{slug}/{}/{slug}-{}-r{record_id}.{ext}",
        started.format("%Y/%m/%d"),
        started.format("%Y%m%dT%H%M%SZ")
    )
}

/// How the artifact at `path` was compressed, as its name says: [`artifact_path`] ends every
/// zstd artifact in `.zst` and no other. (The level only matters for writing; reading takes
/// any.)
pub fn compression_of(path: &str) -> Compression {
    if path.ends_with(".zst") {
        Compression::Zstd { level: 3 }
    } else {
        Compression::None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn artifact_paths_are_sortable_and_safe() {
        let t = crate::time::parse("2026-11-28T02:30:05.123Z").expect("time");
        assert_eq!(
            artifact_path(
                "Web Files (prod)",
                42,
                t,
                TaskType::File,
                Compression::Zstd { level: 3 }
            ),
            "web-files-prod/2026/11/28/web-files-prod-20261128T023005Z-r42.tar.zst"
        );
        assert_eq!(slug("../../etc"), "etc");
        assert_eq!(slug("数据库"), "task");
        assert_eq!(
            artifact_path("x", 1, t, TaskType::File, Compression::None),
            "x/2026/11/28/x-20261128T023005Z-r1.tar"
        );
        assert_eq!(
            artifact_path(
                "db",
                2,
                t,
                TaskType::Postgresql,
                Compression::Zstd { level: 3 }
            ),
            "db/2026/11/28/db-20261128T023005Z-r2.sql.zst"
        );
        assert_eq!(
            artifact_path("app", 3, t, TaskType::Sqlite, Compression::None),
            "app/2026/11/28/app-20261128T023005Z-r3.sqlite"
        );
    }

    #[test]
    fn an_artifacts_name_says_how_it_was_compressed() {
        let t = crate::time::parse("2026-11-28T02:30:05Z").expect("time");
        for compression in [Compression::None, Compression::Zstd { level: 19 }] {
            let path = artifact_path("db", 2, t, TaskType::Postgresql, compression);
            assert_eq!(
                std::mem::discriminant(&compression_of(&path)),
                std::mem::discriminant(&compression),
                "{path}"
            );
        }
    }
}
