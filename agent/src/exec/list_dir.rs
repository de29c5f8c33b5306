//! `list_dir`: one directory of this machine, directories first, then by name.

use crate::paths::PathPolicy;
use std::io::ErrorKind;
use std::path::Path;
use stowage_shared::api::{FS_LIST_MAX_ENTRIES, FsEntry, FsListing};
use stowage_shared::protocol::CommandError;
use stowage_shared::{ErrorCode, time, validate};

pub async fn list_dir(raw: &str, policy: &PathPolicy) -> Result<FsListing, CommandError> {
    // Re-validated here: the agent does not trust what it is sent.
    let path = validate::absolute_path(raw).map_err(|e| CommandError {
        code: ErrorCode::NodeFsPathInvalid,
        message: e.to_string(),
    })?;
    let dir = Path::new(&path);
    policy.check(dir, "read")?;
    let mut reader = tokio::fs::read_dir(dir)
        .await
        .map_err(|e| io_error(&path, &e))?;
    let mut entries = Vec::new();
    let mut truncated = false;
    while let Some(entry) = reader.next_entry().await.map_err(|e| io_error(&path, &e))? {
        if entries.len() == FS_LIST_MAX_ENTRIES {
            truncated = true;
            break;
        }
        let entry_path = entry.path();
        // Follow symlinks so a link to a directory can be browsed into; a dangling link is
        // listed as what it is.
        let meta = match tokio::fs::metadata(&entry_path).await {
            Ok(meta) => Some(meta),
            Err(_) => tokio::fs::symlink_metadata(&entry_path).await.ok(),
        };
        let is_dir = meta.as_ref().is_some_and(|m| m.is_dir());
        entries.push(FsEntry {
            // Non-UTF-8 names are shown with replacement characters; paths the server sends back
            // are UTF-8, so such entries can be seen but not browsed into.
            name: entry.file_name().to_string_lossy().into_owned(),
            path: entry_path.to_string_lossy().into_owned(),
            is_dir,
            size: meta.as_ref().filter(|m| !m.is_dir()).map_or(0, |m| m.len()),
            modified_at: meta
                .and_then(|m| m.modified().ok())
                .map(|t| time::format(t.into())),
        });
    }
    entries.sort_by(|a, b| b.is_dir.cmp(&a.is_dir).then_with(|| a.name.cmp(&b.name)));
    Ok(FsListing {
        path,
        entries,
        truncated,
    })
}

fn io_error(path: &str, err: &std::io::Error) -> CommandError {
    let (code, what) = match err.kind() {
        ErrorKind::NotFound => (ErrorCode::NodeFsNotFound, "does not exist"),
        ErrorKind::PermissionDenied => (
            ErrorCode::NodeFsPermissionDenied,
            "cannot be read by the agent (permission denied)",
        ),
        ErrorKind::NotADirectory => (ErrorCode::NodeFsNotADirectory, "is not a directory"),
        _ => (ErrorCode::NodeFsReadError, "could not be read"),
    };
    CommandError {
        code,
        message: format!("{path} {what}: {err}"),
    }
}

pub fn encode_error(err: serde_json::Error) -> CommandError {
    CommandError {
        code: ErrorCode::NodeFsReadError,
        message: format!("could not encode the listing: {err}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn lists_directories_first_with_sizes() -> std::io::Result<()> {
        let dir = tempfile::tempdir()?;
        std::fs::create_dir(dir.path().join("zeta"))?;
        std::fs::write(dir.path().join("Ärger.txt"), b"12345")?;
        std::fs::write(dir.path().join("alpha"), b"")?;
        let listing = list_dir(&dir.path().to_string_lossy(), &PathPolicy::everything())
            .await
            .expect("listing");
        let names: Vec<(&str, bool, u64)> = listing
            .entries
            .iter()
            .map(|e| (e.name.as_str(), e.is_dir, e.size))
            .collect();
        assert_eq!(
            names,
            [
                ("zeta", true, 0),
                ("alpha", false, 0),
                ("Ärger.txt", false, 5)
            ]
        );
        assert!(listing.entries.iter().all(|e| e.modified_at.is_some()));
        assert!(!listing.truncated);
        Ok(())
    }

    #[test]
    fn permission_denied_has_its_own_code() {
        // Tests run as root here, which reads everything, so the mapping is checked directly.
        let err = io_error(
            "/root/secret",
            &std::io::Error::from(ErrorKind::PermissionDenied),
        );
        assert_eq!(err.code, ErrorCode::NodeFsPermissionDenied);
        assert!(err.message.starts_with("/root/secret cannot be read"));
    }

    #[tokio::test]
    async fn errors_carry_codes() -> std::io::Result<()> {
        let dir = tempfile::tempdir()?;
        let file = dir.path().join("file");
        std::fs::write(&file, b"x")?;
        let missing = dir.path().join("missing");
        let err = list_dir(&missing.to_string_lossy(), &PathPolicy::everything())
            .await
            .expect_err("missing");
        assert_eq!(err.code, ErrorCode::NodeFsNotFound);
        let err = list_dir("relative/path", &PathPolicy::everything())
            .await
            .expect_err("relative");
        assert_eq!(err.code, ErrorCode::NodeFsPathInvalid);
        let err = list_dir(&file.to_string_lossy(), &PathPolicy::everything())
            .await
            .expect_err("a file");
        assert_eq!(err.code, ErrorCode::NodeFsNotADirectory);
        Ok(())
    }
}
