//! The response envelope `{code, message, data}` and the catalogue of error codes.
//!
//! Every response the API sends is an [`Envelope`]: `code` is `"OK"` on success, otherwise a
//! SCREAMING_SNAKE code from [`ErrorCode`], which also fixes the HTTP status. Codes and statuses
//! follow BackupX's public contract where it has them, so existing clients keep working.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// The body of every API response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope<T> {
    pub code: String,
    pub message: String,
    pub data: Option<T>,
}

impl<T> Envelope<T> {
    pub fn ok(data: T) -> Self {
        Self {
            code: "OK".to_owned(),
            message: String::new(),
            data: Some(data),
        }
    }

    pub fn is_ok(&self) -> bool {
        self.code == "OK"
    }
}

impl Envelope<()> {
    pub fn error(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code: code.as_str().to_owned(),
            message: message.into(),
            data: None,
        }
    }
}

macro_rules! error_codes {
    ($($(#[$doc:meta])* $variant:ident = ($text:literal, $status:literal),)*) => {
        /// Every error code the API can answer with, and the HTTP status that goes with it.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum ErrorCode {
            $($(#[$doc])* $variant,)*
        }

        impl ErrorCode {
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant,)*];

            pub fn as_str(self) -> &'static str {
                match self {
                    $(ErrorCode::$variant => $text,)*
                }
            }

            pub fn status(self) -> u16 {
                match self {
                    $(ErrorCode::$variant => $status,)*
                }
            }

            pub fn from_code(text: &str) -> Option<Self> {
                match text {
                    $($text => Some(ErrorCode::$variant),)*
                    _ => None,
                }
            }
        }
    };
}

error_codes! {
    /// The request body or query was not acceptable and no more specific code applies.
    InvalidInput = ("INVALID_INPUT", 400),
    /// A path id was not a positive integer.
    InvalidId = ("INVALID_ID", 400),
    /// No route has this path.
    NotFound = ("NOT_FOUND", 404),
    /// The path exists but not with this method (the `Allow` header lists the ones that do).
    MethodNotAllowed = ("METHOD_NOT_ALLOWED", 405),
    /// The body is larger than the route accepts.
    PayloadTooLarge = ("PAYLOAD_TOO_LARGE", 413),
    /// The body is not `application/json`.
    UnsupportedMediaType = ("UNSUPPORTED_MEDIA_TYPE", 415),
    InternalError = ("INTERNAL_ERROR", 500),
    /// A required secret or setting is missing from the Worker's environment.
    ServerMisconfigured = ("SERVER_MISCONFIGURED", 500),
    /// Readiness failed: the database cannot be reached or is not migrated.
    NotReady = ("NOT_READY", 503),

    AuthRequired = ("AUTH_REQUIRED", 401),
    AuthInvalidToken = ("AUTH_INVALID_TOKEN", 401),
    AuthInvalidCredentials = ("AUTH_INVALID_CREDENTIALS", 401),
    AuthForbidden = ("AUTH_FORBIDDEN", 403),
    AuthRateLimited = ("AUTH_RATE_LIMITED", 429),
    AuthSetupDisabled = ("AUTH_SETUP_DISABLED", 409),
    AuthSetupInvalid = ("AUTH_SETUP_INVALID", 400),
    AuthLoginInvalid = ("AUTH_LOGIN_INVALID", 400),
    AuthPasswordInvalid = ("AUTH_PASSWORD_INVALID", 400),
    AuthWrongPassword = ("AUTH_WRONG_PASSWORD", 400),

    NodeInvalid = ("NODE_INVALID", 400),
    NodeNotFound = ("NODE_NOT_FOUND", 404),
    NodeDuplicateName = ("NODE_DUPLICATE_NAME", 409),
    /// Tasks still run on this node; move or delete them first.
    NodeHasTasks = ("NODE_HAS_TASKS", 409),
    NodeOffline = ("NODE_OFFLINE", 400),
    /// The agent's token is missing, wrong or was rotated away.
    NodeInvalidToken = ("NODE_INVALID_TOKEN", 401),
    NodeFsPathInvalid = ("NODE_FS_PATH_INVALID", 400),
    NodeFsNotFound = ("NODE_FS_NOT_FOUND", 404),
    NodeFsNotADirectory = ("NODE_FS_NOT_A_DIRECTORY", 400),
    NodeFsPermissionDenied = ("NODE_FS_PERMISSION_DENIED", 403),
    NodeFsReadError = ("NODE_FS_READ_ERROR", 400),
    /// The node's own `--allow-path` list does not cover the path; the message names it.
    NodePathNotAllowed = ("NODE_PATH_NOT_ALLOWED", 403),
    /// The work carries a target's credentials and no node may receive them without being named:
    /// pass `nodeId` (a node whose tasks use the target, or one you choose).
    NodeRequired = ("NODE_REQUIRED", 400),
    AgentProtocolUnsupported = ("AGENT_PROTOCOL_UNSUPPORTED", 426),
    /// The node calls more often than an agent ever does; it is told to slow down.
    AgentRateLimited = ("AGENT_RATE_LIMITED", 429),
    AgentCommandNotFound = ("AGENT_COMMAND_NOT_FOUND", 404),
    /// The command belongs to another node.
    AgentCommandForbidden = ("AGENT_COMMAND_FORBIDDEN", 403),
    /// The lease ran out before the result arrived; the command was given up.
    AgentCommandLeaseExpired = ("AGENT_COMMAND_LEASE_EXPIRED", 409),
    AgentResultInvalid = ("AGENT_RESULT_INVALID", 400),
    /// The agent did not answer within the wait of a synchronous call.
    AgentCommandTimeout = ("AGENT_COMMAND_TIMEOUT", 504),

    /// The request body of a storage target is unusable (name, type, description).
    StorageTargetInvalid = ("STORAGE_TARGET_INVALID", 400),
    /// The target's `config` is wrong for its type; the message names the field.
    StorageTargetInvalidConfig = ("STORAGE_TARGET_INVALID_CONFIG", 400),
    StorageProviderUnsupported = ("STORAGE_PROVIDER_UNSUPPORTED", 400),
    StorageTargetTypeImmutable = ("STORAGE_TARGET_TYPE_IMMUTABLE", 400),
    StorageTargetNotFound = ("STORAGE_TARGET_NOT_FOUND", 404),
    StorageTargetNameExists = ("STORAGE_TARGET_NAME_EXISTS", 409),
    /// The backend refused or could not be reached; the message is the backend's reason.
    StorageTargetTestFailed = ("STORAGE_TARGET_TEST_FAILED", 400),
    /// No usage was measured yet, and a viewer cannot start a measurement.
    StorageTargetUsageUnmeasured = ("STORAGE_TARGET_USAGE_UNMEASURED", 404),
    /// No online node can run the work.
    NodePoolEmpty = ("NODE_POOL_EMPTY", 400),
    /// Tasks still write to this target.
    StorageTargetInUse = ("STORAGE_TARGET_IN_USE", 409),
    /// Backups are stored on this target: say what happens to them (`?deleteBackups=true|false`).
    StorageTargetHasBackups = ("STORAGE_TARGET_HAS_BACKUPS", 409),
    /// The task request is unusable; the message names the field.
    BackupTaskInvalid = ("BACKUP_TASK_INVALID", 400),
    BackupTaskNotFound = ("BACKUP_TASK_NOT_FOUND", 404),
    BackupTaskNameExists = ("BACKUP_TASK_NAME_EXISTS", 409),
    /// The task is already running; a second run would write the same backups twice.
    BackupTaskRunning = ("BACKUP_TASK_RUNNING", 409),
    BackupRecordNotFound = ("BACKUP_RECORD_NOT_FOUND", 404),
    /// Record filters or paging are unusable; the message names the parameter.
    BackupRecordFilterInvalid = ("BACKUP_RECORD_FILTER_INVALID", 400),
    /// The record's run is still going: it cannot be deleted, restored or downloaded yet.
    BackupRecordRunning = ("BACKUP_RECORD_RUNNING", 409),
    /// Removing a record's stored objects failed on some target; the record is kept.
    BackupRecordDeleteFailed = ("BACKUP_RECORD_DELETE_FAILED", 502),
    /// The record has no stored artifact to read (it failed, or was removed by retention).
    RestoreSourceInvalid = ("RESTORE_SOURCE_INVALID", 400),
    /// The restore destination is unusable (not absolute, or not a directory).
    RestoreTargetInvalid = ("RESTORE_TARGET_INVALID", 400),
    RestoreRecordNotFound = ("RESTORE_RECORD_NOT_FOUND", 404),
    /// A restore failed on the agent; the message says why.
    RestoreFailed = ("RESTORE_FAILED", 400),
    /// The database connection is unusable as given; the message names the field.
    DatabaseConnectionInvalid = ("DATABASE_CONNECTION_INVALID", 400),
    /// The database server refused the connection (wrong password, unknown host, …); the message
    /// is the client's reason.
    DatabaseConnectFailed = ("DATABASE_CONNECT_FAILED", 400),
    /// Chunks of a relayed download wait to be taken: send this one again shortly.
    RelayBusy = ("RELAY_BUSY", 429),
    /// The relayed download ended (finished, failed or abandoned): stop sending.
    RelayGone = ("RELAY_GONE", 409),
    /// The artifact could not be fetched for download; the message says why.
    BackupRecordDownloadFailed = ("BACKUP_RECORD_DOWNLOAD_FAILED", 502),
    /// The storage target holds no restic repository yet (a repository task's first run makes it).
    StorageRepositoryMissing = ("STORAGE_REPOSITORY_MISSING", 409),
    /// The target's repository holds backups and its password was never handed out in a recovery
    /// kit: deleting the target and leaving them there would leave them unreadable.
    StorageRecoveryKitRequired = ("STORAGE_RECOVERY_KIT_REQUIRED", 409),
    /// The target's repository is busy: another run is creating it (one run at a time until it
    /// exists), or it is being pruned (no run writes while a prune runs, no prune while a run
    /// writes).
    StorageRepositoryBusy = ("STORAGE_REPOSITORY_BUSY", 409),
    /// The record is an archive, one file: it is downloaded or restored, not browsed.
    BackupRecordNotBrowsable = ("BACKUP_RECORD_NOT_BROWSABLE", 400),
    /// No verification record has this id.
    VerifyRecordNotFound = ("VERIFY_RECORD_NOT_FOUND", 404),
    /// A prune of the target's repository failed on the agent; the message says why.
    StorageRepositoryPruneFailed = ("STORAGE_REPOSITORY_PRUNE_FAILED", 502),
    /// The record is a repository snapshot, not one file: restore it (all or selected paths),
    /// or read it with restic.
    BackupRecordNotDownloadable = ("BACKUP_RECORD_NOT_DOWNLOADABLE", 400),
    /// A run failed on the agent; the message says why.
    BackupRunFailed = ("BACKUP_RUN_FAILED", 400),
    /// The node lacks a program the work needs (e.g. rclone); the message names it.
    NodeMissingTool = ("NODE_MISSING_TOOL", 400),
    /// The Google Drive authorization request is incomplete or wrong.
    StorageGoogleOauthInvalid = ("STORAGE_GOOGLE_OAUTH_INVALID", 400),
    /// The `state` is unknown, used already or older than ten minutes.
    StorageGoogleOauthStateInvalid = ("STORAGE_GOOGLE_OAUTH_STATE_INVALID", 400),
    /// Google's token endpoint refused the code; the message is its reason.
    StorageGoogleOauthExchangeFailed = ("STORAGE_GOOGLE_OAUTH_EXCHANGE_FAILED", 400),
    /// Google granted access without a refresh token, so the agent could not renew it.
    StorageGoogleOauthRefreshTokenMissing = ("STORAGE_GOOGLE_OAUTH_REFRESH_TOKEN_MISSING", 400),
    /// `targetId` names a target that is not a Google Drive one.
    StorageGoogleDriveTypeMismatch = ("STORAGE_GOOGLE_DRIVE_TYPE_MISMATCH", 400),
    /// The channel request is unusable (name, type, events, config); the message names the field.
    NotificationInvalid = ("NOTIFICATION_INVALID", 400),
    NotificationNotFound = ("NOTIFICATION_NOT_FOUND", 404),
    NotificationNameExists = ("NOTIFICATION_NAME_EXISTS", 409),
    /// The test message could not be delivered; the message is the receiver's or network's reason.
    NotificationTestFailed = ("NOTIFICATION_TEST_FAILED", 400),
    /// `days` is not a whole number of days in range.
    DashboardTimelineInvalid = ("DASHBOARD_TIMELINE_INVALID", 400),
    /// An audit-log filter or page is unusable; the message names the parameter.
    AuditFilterInvalid = ("AUDIT_FILTER_INVALID", 400),
    /// A setting is unknown or its value is wrong; the message names the key.
    SettingsInvalid = ("SETTINGS_INVALID", 400),
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for ErrorCode {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ErrorCode {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        ErrorCode::from_code(&text)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown error code {text}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn success_envelope_shape() {
        let env = Envelope::ok(json!({"initialized": false}));
        assert_eq!(
            serde_json::to_value(&env).expect("json"),
            json!({"code": "OK", "message": "", "data": {"initialized": false}})
        );
    }

    #[test]
    fn error_envelope_has_null_data() {
        let env = Envelope::error(ErrorCode::AuthRequired, "sign in first");
        assert_eq!(
            serde_json::to_value(&env).expect("json"),
            json!({"code": "AUTH_REQUIRED", "message": "sign in first", "data": null})
        );
    }

    #[test]
    fn every_code_is_screaming_snake_round_trips_and_is_an_error_status() {
        let mut seen = std::collections::HashSet::new();
        for &code in ErrorCode::ALL {
            let text = code.as_str();
            assert!(seen.insert(text), "duplicate code {text}");
            assert!(
                text.chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'),
                "{text} is not SCREAMING_SNAKE"
            );
            assert_eq!(ErrorCode::from_code(text), Some(code));
            assert!(
                (400..600).contains(&code.status()),
                "{text} has status {}",
                code.status()
            );
        }
    }

    #[test]
    fn statuses_match_the_reference_contract() {
        let cases = [
            (ErrorCode::AuthRequired, 401),
            (ErrorCode::AuthInvalidToken, 401),
            (ErrorCode::AuthInvalidCredentials, 401),
            (ErrorCode::AuthRateLimited, 429),
            (ErrorCode::AuthSetupDisabled, 409),
            (ErrorCode::AuthSetupInvalid, 400),
            (ErrorCode::AuthLoginInvalid, 400),
            (ErrorCode::AuthPasswordInvalid, 400),
            (ErrorCode::AuthWrongPassword, 400),
            (ErrorCode::NotFound, 404),
            (ErrorCode::PayloadTooLarge, 413),
        ];
        for (code, status) in cases {
            assert_eq!(code.status(), status, "{code}");
        }
    }

    #[test]
    fn client_can_read_an_error_envelope() {
        let env: Envelope<serde_json::Value> =
            serde_json::from_str(r#"{"code":"NOT_FOUND","message":"no route","data":null}"#)
                .expect("parse");
        assert!(!env.is_ok());
        assert_eq!(ErrorCode::from_code(&env.code), Some(ErrorCode::NotFound));
    }
}
