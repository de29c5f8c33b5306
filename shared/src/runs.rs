//! How a backup run ended, judged from what it was planned to do and what the agent reported. A
//! run is `success` only when every target it was planned for holds the whole artifact: a target
//! the report leaves out is failed, and so is one whose stored size differs from the artifact's.

use crate::protocol::RunBackupReport;
use crate::status::RunStatus;

/// The verdict on one planned target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetVerdict {
    pub target_id: i64,
    /// Bytes stored when the whole artifact landed there.
    pub stored: Option<u64>,
    pub error: String,
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
                    error: "the agent did not report this target".to_owned(),
                };
            };
            match (said.bytes, &said.error) {
                (Some(bytes), None) if bytes == report.bytes => TargetVerdict {
                    target_id,
                    stored: Some(bytes),
                    error: String::new(),
                },
                (Some(bytes), None) => TargetVerdict {
                    target_id,
                    stored: None,
                    error: format!("stored {bytes} bytes of the {}-byte artifact", report.bytes),
                },
                (_, Some(why)) => TargetVerdict {
                    target_id,
                    stored: None,
                    error: why.clone(),
                },
                (None, None) => TargetVerdict {
                    target_id,
                    stored: None,
                    error: "the agent reported no bytes stored".to_owned(),
                },
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
        }
    }

    fn stored(target_id: i64, bytes: u64) -> RunTargetReport {
        RunTargetReport {
            target_id,
            bytes: Some(bytes),
            error: None,
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
        };
        let v = judge(&[1, 2], &report(vec![failed, stored(2, 100)]));
        assert_eq!(
            (v.status.as_str(), v.error.as_str()),
            ("partial", "target 1: disk full")
        );
    }
}
