//! How a backup run ended, judged from what it was planned to do and what the agent reported. A
//! run is `success` only when every target it was planned for holds the whole artifact: a target
//! the report leaves out is failed, and so is one whose stored size differs from the artifact's
//! (archives) or that names no snapshot (repositories).

use crate::protocol::RunBackupReport;
use crate::status::RunStatus;

/// The verdict on one planned target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetVerdict {
    pub target_id: i64,
    /// Bytes stored when the whole artifact landed there (repositories: bytes the run added).
    pub stored: Option<u64>,
    /// The snapshot a repository run wrote there.
    pub snapshot_id: Option<String>,
    pub error: String,
}

/// A full restic snapshot id: 64 lowercase hex digits.
pub fn is_snapshot_id(id: &str) -> bool {
    id.len() == 64 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// The verdict on a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunVerdict {
    pub status: RunStatus,
    pub targets: Vec<TargetVerdict>,
    /// Every target's error, `target N: why`, joined.
    pub error: String,
}

pub fn judge(planned: &[i64], report: &RunBackupReport) -> RunVerdict {
    let targets: Vec<TargetVerdict> = planned
        .iter()
        .map(|&target_id| {
            let Some(said) = report.targets.iter().find(|t| t.target_id == target_id) else {
                return TargetVerdict {
                    target_id,
                    stored: None,
                    snapshot_id: None,
                    error: "the agent did not report this target".to_owned(),
                };
            };
            let verdict = |stored: Option<u64>, error: String| TargetVerdict {
                target_id,
                stored,
                snapshot_id: stored.and(said.snapshot_id.clone()),
                error,
            };
            match (said.bytes, &said.error) {
                (_, Some(why)) => verdict(None, why.clone()),
                (None, None) => verdict(None, "the agent reported no bytes stored".to_owned()),
                // A repository run: each target has its own snapshot and its own bytes added.
                (Some(bytes), None) if report.changes.is_some() => {
                    match said.snapshot_id.as_deref() {
                        Some(id) if is_snapshot_id(id) => verdict(Some(bytes), String::new()),
                        _ => verdict(None, "the agent reported no snapshot".to_owned()),
                    }
                }
                (Some(bytes), None) if bytes == report.bytes => verdict(Some(bytes), String::new()),
                (Some(bytes), None) => verdict(
                    None,
                    format!("stored {bytes} bytes of the {}-byte artifact", report.bytes),
                ),
            }
        })
        .collect();
    let stored = targets.iter().filter(|t| t.stored.is_some()).count();
    let status = RunStatus::settle(stored, targets.len());
    let error = targets
        .iter()
        .filter(|t| !t.error.is_empty())
        .map(|t| format!("target {}: {}", t.target_id, t.error))
        .collect::<Vec<_>>()
        .join("; ");
    RunVerdict {
        status,
        targets,
        error,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::RunTargetReport;

    fn report(targets: Vec<RunTargetReport>) -> RunBackupReport {
        RunBackupReport {
            bytes: 100,
            sha256: "ab".repeat(32),
            files: 1,
            source_bytes: 100,
            targets,
            sections: Vec::new(),
            changes: None,
        }
    }

    fn stored(target_id: i64, bytes: u64) -> RunTargetReport {
        RunTargetReport {
            target_id,
            bytes: Some(bytes),
            error: None,
            snapshot_id: None,
        }
    }

    #[test]
    fn every_planned_target_must_hold_the_whole_artifact() {
        assert_eq!(
            judge(&[1, 2], &report(vec![stored(1, 100), stored(2, 100)])).status,
            "success"
        );
        // A target left out of the report is failed, whatever the others say.
        let left_out = judge(&[1, 2], &report(vec![stored(1, 100)]));
        assert_eq!(left_out.status, "partial");
        assert!(
            left_out
                .error
                .contains("target 2: the agent did not report"),
            "{left_out:?}"
        );
        // A short copy is no copy.
        let short = judge(&[1], &report(vec![stored(1, 99)]));
        assert_eq!(short.status, "failed");
        assert!(
            short
                .error
                .contains("stored 99 bytes of the 100-byte artifact"),
            "{short:?}"
        );
        // Reports of targets that were not planned count for nothing.
        assert_eq!(judge(&[1], &report(vec![stored(7, 100)])).status, "failed");
        let failed = RunTargetReport {
            target_id: 1,
            bytes: None,
            error: Some("disk full".to_owned()),
            snapshot_id: None,
        };
        let v = judge(&[1, 2], &report(vec![failed, stored(2, 100)]));
        assert_eq!(
            (v.status.as_str(), v.error.as_str()),
            ("partial", "target 1: disk full")
        );
    }

    #[test]
    fn a_repository_target_counts_when_it_names_its_snapshot() {
        let mut run = report(Vec::new());
        run.changes = Some(crate::api::records::SnapshotChanges::default());
        let snap = |target_id, id: &str| RunTargetReport {
            snapshot_id: Some(id.to_owned()),
            ..stored(target_id, 7)
        };
        // Bytes added differ per target and from the report's total: that is not a short copy.
        run.targets = vec![snap(1, &"a".repeat(64)), snap(2, "abc"), stored(3, 7)];
        let v = judge(&[1, 2, 3], &run);
        assert_eq!(v.status, "partial");
        assert_eq!(v.targets[0].stored, Some(7));
        assert_eq!(
            v.targets[0].snapshot_id.as_deref(),
            Some("a".repeat(64).as_str())
        );
        assert_eq!(v.targets[1].error, "the agent reported no snapshot");
        assert_eq!(v.targets[2].error, "the agent reported no snapshot");
        assert!(!is_snapshot_id(&"A".repeat(64)));
    }
}
