//! Directory trees as data, to compare what a restore wrote with what was backed up.

use anyhow::Result;
use std::path::{Path, PathBuf};

/// One entry of a directory tree, as a restore must give it back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeEntry {
    /// `file`, `dir` or `link`.
    pub kind: &'static str,
    pub mode: u32,
    /// Seconds; 0 for symlinks (their own time is not restored by any tar).
    pub mtime: i64,
    /// File contents, or a symlink's target.
    pub body: Vec<u8>,
}

/// Every entry under `root`, by relative path.
pub fn snapshot(root: &Path) -> Result<std::collections::BTreeMap<PathBuf, TreeEntry>> {
    use std::os::unix::fs::MetadataExt;
    let mut out = std::collections::BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let path = entry?.path();
            let meta = std::fs::symlink_metadata(&path)?;
            let (kind, body) = if meta.file_type().is_symlink() {
                (
                    "link",
                    std::fs::read_link(&path)?
                        .into_os_string()
                        .into_encoded_bytes(),
                )
            } else if meta.is_dir() {
                stack.push(path.clone());
                ("dir", Vec::new())
            } else {
                ("file", std::fs::read(&path)?)
            };
            out.insert(
                path.strip_prefix(root)?.to_path_buf(),
                TreeEntry {
                    kind,
                    mode: meta.mode() & 0o7777,
                    mtime: if kind == "link" { 0 } else { meta.mtime() },
                    body,
                },
            );
        }
    }
    Ok(out)
}
