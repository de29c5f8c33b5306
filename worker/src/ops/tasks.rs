//! A stored task's spec and its sealed database password.

use crate::error::ApiError;
use crate::secrets::Identity;
use crate::store::tasks::TaskRow;
use stowage_shared::SecretString;
use stowage_shared::tasks::TaskSpec;

/// A stored task spec (written only from a checked request).
pub fn stored_spec(row: &TaskRow) -> Result<TaskSpec, ApiError> {
    serde_json::from_str(&row.spec).map_err(|e| ApiError::internal("stored task spec", e))
}

/// A task's stored database password (empty when none is stored).
pub fn open_password(
    sealer: &crate::secrets::Sealer,
    task: &TaskRow,
) -> Result<SecretString, ApiError> {
    if task.password_sealed.is_empty() {
        return Ok(SecretString::new(""));
    }
    let plain = sealer.open(Identity::TaskPassword(&task.uid), &task.password_sealed)?;
    String::from_utf8(plain)
        .map(SecretString::new)
        .map_err(|e| ApiError::internal("task password", e))
}
