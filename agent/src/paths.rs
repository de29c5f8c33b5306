//! The node's own limit on what the control plane may touch: `--allow-path` (or `allow_paths` in
//! the config file) lists the directories whose contents it may read (backup sources, `fs/list`,
//! SQLite files) and write (restore destinations, `local_disk` targets). With no list, every path
//! the agent's user can reach is allowed, as before, and the agent says so when it starts.
//!
//! Paths are compared after resolving symlinks (of the longest part that exists), so a link inside
//! an allowed directory that points outside it does not widen the list, and `..` cannot climb out.

use std::path::{Component, Path, PathBuf};
use stowage_shared::ErrorCode;
use stowage_shared::protocol::CommandError;

#[derive(Debug, Clone, Default)]
pub struct PathPolicy {
    /// `None`: everything is allowed.
    roots: Option<Vec<PathBuf>>,
}

/// `path` with its longest existing prefix resolved through symlinks and the rest appended;
/// `..` and `.` are resolved lexically after that (so `/srv/../etc` is `/etc`).
fn resolve(path: &Path) -> PathBuf {
    let mut existing = path.to_path_buf();
    let mut rest = Vec::new();
    loop {
        if let Ok(real) = std::fs::canonicalize(&existing) {
            let mut out = real;
            for part in rest.iter().rev() {
                out.push(part);
            }
            return normalize(&out);
        }
        match (existing.file_name(), existing.parent()) {
            (Some(name), Some(parent)) => {
                rest.push(name.to_os_string());
                existing = parent.to_path_buf();
            }
            _ => return normalize(path),
        }
    }
}

fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    for part in path.components() {
        match part {
            Component::Normal(name) => out.push(name),
            Component::ParentDir => {
                out.pop();
            }
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    out
}

impl PathPolicy {
    /// No limit.
    pub fn everything() -> Self {
        Self { roots: None }
    }

    /// Only these directories (absolute paths) and what lies under them.
    pub fn only(roots: &[PathBuf]) -> Result<Self, String> {
        let mut resolved = Vec::new();
        for root in roots {
            if !root.is_absolute() {
                return Err(format!(
                    "--allow-path {} must be an absolute path",
                    root.display()
                ));
            }
            resolved.push(resolve(root));
        }
        Ok(Self {
            roots: Some(resolved),
        })
    }

    /// The allowed directories, or `None` for everything.
    pub fn roots(&self) -> Option<&[PathBuf]> {
        self.roots.as_deref()
    }

    pub fn allows(&self, path: &Path) -> bool {
        match &self.roots {
            None => true,
            Some(roots) => {
                let real = resolve(path);
                roots.iter().any(|root| real.starts_with(root))
            }
        }
    }

    /// `Ok` when `path` may be used for `purpose` ("read", "write to"); otherwise the error the
    /// API shows, naming the path and the allowed directories.
    pub fn check(&self, path: &Path, purpose: &str) -> Result<(), CommandError> {
        if self.allows(path) {
            return Ok(());
        }
        let roots = self
            .roots
            .iter()
            .flatten()
            .map(|r| r.display().to_string())
            .collect::<Vec<_>>()
            .join(", ");
        Err(CommandError {
            code: ErrorCode::NodePathNotAllowed,
            message: format!(
                "this node does not let Stowage {purpose} {}: its agent allows only {roots} (--allow-path)",
                path.display()
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_list_allows_everything() {
        assert!(PathPolicy::everything().allows(Path::new("/etc/shadow")));
    }

    #[test]
    fn only_listed_directories_and_their_contents_pass() -> Result<(), String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let allowed = dir.path().join("srv");
        std::fs::create_dir(&allowed).map_err(|e| e.to_string())?;
        let policy = PathPolicy::only(std::slice::from_ref(&allowed))?;
        assert!(policy.allows(&allowed));
        assert!(policy.allows(&allowed.join("site/index.html")));
        assert!(policy.allows(&allowed.join("not/yet/made")));
        assert!(!policy.allows(dir.path()));
        assert!(!policy.allows(Path::new("/etc")));
        // A sibling whose name starts the same is not inside.
        assert!(!policy.allows(&dir.path().join("srv-other")));
        // `..` cannot climb out.
        assert!(!policy.allows(&allowed.join("../secret")));
        let err = policy
            .check(Path::new("/etc"), "read")
            .expect_err("outside");
        assert_eq!(err.code, ErrorCode::NodePathNotAllowed);
        assert!(
            err.message.contains("/etc") && err.message.contains("srv"),
            "{}",
            err.message
        );
        Ok(())
    }

    #[test]
    fn a_symlink_out_of_an_allowed_directory_is_judged_by_where_it_points() -> Result<(), String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let allowed = dir.path().join("srv");
        let outside = dir.path().join("private");
        std::fs::create_dir(&allowed).map_err(|e| e.to_string())?;
        std::fs::create_dir(&outside).map_err(|e| e.to_string())?;
        std::os::unix::fs::symlink(&outside, allowed.join("escape")).map_err(|e| e.to_string())?;
        let policy = PathPolicy::only(std::slice::from_ref(&allowed))?;
        assert!(!policy.allows(&allowed.join("escape")));
        assert!(!policy.allows(&allowed.join("escape/file")));
        // An allowed directory reached through a symlink is still allowed.
        std::os::unix::fs::symlink(&allowed, dir.path().join("alias"))
            .map_err(|e| e.to_string())?;
        assert!(policy.allows(&dir.path().join("alias/file")));
        Ok(())
    }

    #[test]
    fn relative_roots_are_refused() {
        assert!(PathPolicy::only(&[PathBuf::from("srv")]).is_err());
    }
}
