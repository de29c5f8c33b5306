//! The states of the things the control plane tracks, as types: a run's record and its targets, a
//! restore, a relayed download, a storage target's last test, a notification delivery, what
//! started a run, and the kinds of agent commands. Each is stored, sent and shown as the same
//! lowercase word (the D1 `CHECK` constraints list the same words), and compared only as a value
//! of its type, never as text.
//!
//! Also here: the one rule that turns a finished run's per-target outcomes into its status.

use serde::{Deserialize, Serialize};

/// Declares a unit enum whose variants are written as fixed words, with `as_str`, `parse`,
/// `ALL`, `Display` and comparison with `&str` (so that a test may say `status == "success"`).
/// Serde's derive gives the wire form; the same words are needed for SQL parameters and for
/// parsing D1 text, which serde would only reach through a JSON round trip. `strum` would do it
/// with a proc-macro dependency for both targets; a dozen lines of `macro_rules!` do it here.
macro_rules! words {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $word:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum $name {
            $($(#[$vmeta])* #[serde(rename = $word)] $variant),+
        }

        impl $name {
            pub const ALL: [$name; [$($word),+].len()] = [$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $word),+
                }
            }

            pub fn parse(text: &str) -> Option<Self> {
                match text {
                    $($word => Some($name::$variant),)+
                    _ => None,
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.as_str() == *other
            }
        }

        impl PartialEq<$name> for &str {
            fn eq(&self, other: &$name) -> bool {
                *self == other.as_str()
            }
        }
    };
}

words! {
    /// A backup record: one run of a task.
    RunStatus {
        Running = "running",
        /// Every target the run was planned for holds the whole artifact.
        Success = "success",
        /// Some targets hold it, some failed.
        Partial = "partial",
        Failed = "failed",
    }
}

impl RunStatus {
    /// Whether the run's artifact is stored somewhere (a download or restore can use it).
    pub fn has_backup(self) -> bool {
        matches!(self, RunStatus::Success | RunStatus::Partial)
    }

    /// The status of a finished run: success when every planned target holds the artifact,
    /// partial when some do, failed when none does (or nothing was planned).
    pub fn settle(stored: usize, planned: usize) -> RunStatus {
        if stored == 0 {
            RunStatus::Failed
        } else if stored < planned {
            RunStatus::Partial
        } else {
            RunStatus::Success
        }
    }
}

words! {
    /// One target of a backup record.
    TargetStatus {
        Running = "running",
        Success = "success",
        Failed = "failed",
    }
}

words! {
    /// A restore of a backup record.
    RestoreStatus {
        Running = "running",
        Success = "success",
        Failed = "failed",
    }
}

words! {
    /// A line of the dashboard's recent activity.
    ActivityKind {
        Backup = "backup",
        Restore = "restore",
    }
}

words! {
    /// What started a run.
    Trigger {
        Manual = "manual",
        Schedule = "schedule",
    }
}

words! {
    /// A relayed download: the agent sends chunks through the Worker to a waiting response.
    RelayStatus {
        Waiting = "waiting",
        Sending = "sending",
        Done = "done",
        Failed = "failed",
    }
}

words! {
    /// What a relayed download carries: a stored file as it is, or a snapshot's folder as a tar
    /// stream (the agent says which with its first chunk).
    RelayKind {
        File = "file",
        Tar = "tar",
    }
}

words! {
    /// The last connection test of a storage target.
    TestStatus {
        Unknown = "unknown",
        Success = "success",
        Failed = "failed",
    }
}

words! {
    /// One notification delivery.
    DeliveryStatus {
        Pending = "pending",
        Sending = "sending",
        Sent = "sent",
        Failed = "failed",
    }
}

words! {
    /// An agent command's place in its queue (the rules are in [`crate::commands`]).
    CommandStatus {
        Pending = "pending",
        Claimed = "claimed",
        Succeeded = "succeeded",
        Failed = "failed",
        Expired = "expired",
    }
}

words! {
    /// The kind of an agent command, as stored in `agent_commands.kind`: one per
    /// [`crate::protocol::CommandSpec`] variant family, each with its own report type.
    CommandKind {
        ListDir = "list_dir",
        StorageTest = "storage_test",
        StorageUsage = "storage_usage",
        PruneRepository = "prune_repository",
        /// A repository check (restic's `check`).
        Verify = "verify",
        ListSnapshot = "list_snapshot",
        RcloneBackends = "rclone_backends",
        RunBackup = "run_backup",
        DeleteArtifacts = "delete_artifacts",
        DiscoverDatabases = "discover_databases",
        Relay = "relay",
        /// A file or a database restore.
        Restore = "restore",
    }
}

words! {
    /// How a task stores its backups; each record keeps the format it was written in.
    BackupFormat {
        /// One `tar` (zstd-compressed or not) per run, with a manifest beside it.
        Archive = "archive",
        /// A snapshot in the target's restic repository: deduplicated, encrypted, incremental.
        Repository = "repository",
    }
}

/// Archives, as before formats existed (the API's default, for compatibility).
impl Default for BackupFormat {
    fn default() -> Self {
        BackupFormat::Archive
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_round_trip_through_text_and_json() {
        for s in RunStatus::ALL {
            assert_eq!(RunStatus::parse(s.as_str()), Some(s));
            let json = serde_json::to_value(s).expect("json");
            assert_eq!(json, serde_json::Value::String(s.as_str().to_owned()));
        }
        for k in CommandKind::ALL {
            assert_eq!(CommandKind::parse(&k.to_string()), Some(k));
        }
        assert_eq!(RunStatus::parse("succeeded"), None);
        assert!(RunStatus::Partial == "partial" && "failed" == RunStatus::Failed);
    }

    #[test]
    fn a_run_is_settled_by_how_many_planned_targets_hold_it() {
        // (targets that stored the artifact, targets planned, status)
        let cases = [
            (0, 0, RunStatus::Failed),
            (0, 2, RunStatus::Failed),
            (1, 2, RunStatus::Partial),
            (2, 2, RunStatus::Success),
            (1, 1, RunStatus::Success),
        ];
        for (stored, planned, want) in cases {
            assert_eq!(
                RunStatus::settle(stored, planned),
                want,
                "{stored}/{planned}"
            );
        }
        assert!(RunStatus::Partial.has_backup() && !RunStatus::Failed.has_backup());
    }
}
