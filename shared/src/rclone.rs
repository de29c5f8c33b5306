//! Which rclone backends and options a storage target may use. rclone is a powerful program:
//! some of its options run programs (`bearer_token_command`, sftp's `ssh`), read files on the host
//! (`key_file`, `service_account_file`), dial local sockets or borrow the host's own cloud
//! identity (`env_auth`, `use_msi`). Whoever configures a target must never reach any of that, so
//! both the Worker (when a target is saved) and the agent (before it starts rclone) accept only
//! the backends and options of an allow-list, `rclone_options.txt`, made from the pinned rclone.

use std::collections::BTreeMap;

/// Backends rclone builds in that are never a storage target, and why.
pub const REFUSED_BACKENDS: &[(&str, &str)] = &[
    ("alias", "wraps another remote"),
    ("archive", "wraps another remote"),
    ("cache", "wraps another remote"),
    ("chunker", "wraps another remote"),
    ("combine", "wraps another remote"),
    ("compress", "wraps another remote"),
    ("crypt", "wraps another remote"),
    ("doi", "is read-only"),
    ("hasher", "wraps another remote"),
    ("hdfs", "authenticates with the host's Kerberos credentials"),
    ("http", "is read-only"),
    (
        "local",
        "is the agent's own file system (use a local_disk target)",
    ),
    ("memory", "keeps nothing after rclone exits"),
    ("oos", "can authenticate as the host's own cloud identity"),
    ("union", "wraps another remote"),
];

/// Options of allowed backends that no target may set, and why.
pub const REFUSED_OPTIONS: &[(&str, &str)] = &[
    ("bearer_token_command", "runs a program on the agent's host"),
    ("blake3sum_command", "runs a program"),
    ("box_config_file", "reads a file on the agent's host"),
    (
        "client_certificate_password",
        "goes with client_certificate_path, a file on the agent's host",
    ),
    (
        "client_certificate_path",
        "reads a file on the agent's host",
    ),
    ("config_file", "reads a file on the agent's host"),
    ("config_profile", "reads a file on the agent's host"),
    ("crc32sum_command", "runs a program"),
    ("env_auth", "uses the agent host's own credentials"),
    ("kerberos_ccache", "reads a file on the agent's host"),
    (
        "key_file",
        "reads a file on the agent's host (paste the key into key_pem)",
    ),
    ("key_use_agent", "uses the agent host's SSH agent"),
    ("known_hosts_file", "reads a file on the agent's host"),
    ("md5sum_command", "runs a program"),
    ("msi_client_id", "uses the agent host's own credentials"),
    ("msi_mi_res_id", "uses the agent host's own credentials"),
    ("msi_object_id", "uses the agent host's own credentials"),
    ("profile", "uses the agent host's own credentials"),
    ("pubkey_file", "reads a file on the agent's host"),
    ("server_command", "runs a program"),
    (
        "service_account_file",
        "reads a file on the agent's host (paste the key into service_account_credentials)",
    ),
    ("service_principal_file", "reads a file on the agent's host"),
    ("sha1sum_command", "runs a program"),
    ("sha256sum_command", "runs a program"),
    (
        "shared_credentials_file",
        "reads a file on the agent's host",
    ),
    ("sse_customer_key_file", "reads a file on the agent's host"),
    ("ssh", "runs a program on the agent's host"),
    ("unix_socket", "dials a socket on the agent's host"),
    (
        "use_az",
        "runs the az program with the agent host's own login",
    ),
    ("use_kerberos", "uses the agent host's own credentials"),
    ("use_msi", "uses the agent host's own credentials"),
    ("xxh128sum_command", "runs a program"),
    ("xxh3sum_command", "runs a program"),
];

/// `[backend]` headers, each followed by its allowed option names, one a line.
const ALLOWED: &str = include_str!("rclone_options.txt");

/// The allowed options of `backend`, or `None` when the backend is not allowed.
pub fn allowed_options(backend: &str) -> Option<impl Iterator<Item = &'static str>> {
    let header = format!("[{backend}]");
    let mut lines = ALLOWED.lines().map(str::trim);
    lines.find(|l| *l == header)?;
    Some(lines.take_while(|l| !l.is_empty() && !l.starts_with('[')))
}

/// The allowed backends, in the file's (alphabetical) order.
pub fn allowed_backends() -> impl Iterator<Item = &'static str> {
    ALLOWED
        .lines()
        .filter_map(|l| l.trim().strip_prefix('[')?.strip_suffix(']'))
}

pub fn backend_allowed(backend: &str) -> bool {
    allowed_options(backend).is_some()
}

pub fn option_allowed(backend: &str, option: &str) -> bool {
    allowed_options(backend).is_some_and(|mut o| o.any(|name| name == option))
}

/// Why a target's rclone remote is refused: `(field, reason)` with the field as the API names it
/// (`backend`, `options.<name>`). The reason never quotes an option's value.
pub fn check_remote(
    backend: &str,
    options: &BTreeMap<String, String>,
) -> Result<(), (String, String)> {
    if !backend_allowed(backend) {
        let reason = match REFUSED_BACKENDS.iter().find(|(name, _)| *name == backend) {
            Some((_, why)) => {
                format!("the rclone backend {backend:?} {why}; it cannot be a storage target")
            }
            None => {
                format!("{backend:?} is not an rclone backend Stowage can use as a storage target")
            }
        };
        return Err(("backend".to_owned(), reason));
    }
    for key in options.keys() {
        if option_allowed(backend, key) {
            continue;
        }
        let reason = match REFUSED_OPTIONS
            .iter()
            .find(|(name, _)| *name == key.as_str())
        {
            Some((_, why)) => format!("is refused: it {why}"),
            None => format!("is not an option Stowage passes on to the rclone backend {backend:?}"),
        };
        return Err((format!("options.{key}"), reason));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(keys: &[&str]) -> BTreeMap<String, String> {
        keys.iter()
            .map(|k| ((*k).to_owned(), "x".to_owned()))
            .collect()
    }

    #[test]
    fn common_remotes_pass() {
        for (backend, keys) in [
            (
                "s3",
                &["provider", "access_key_id", "secret_access_key", "endpoint"][..],
            ),
            ("webdav", &["url", "vendor", "user", "pass", "bearer_token"]),
            ("sftp", &["host", "user", "pass", "key_pem", "port"]),
            (
                "drive",
                &[
                    "client_id",
                    "client_secret",
                    "scope",
                    "token",
                    "root_folder_id",
                ],
            ),
            ("b2", &["account", "key"]),
            ("onedrive", &["token", "drive_id", "drive_type"]),
        ] {
            assert_eq!(check_remote(backend, &options(keys)), Ok(()), "{backend}");
        }
    }

    #[test]
    fn options_that_reach_the_host_are_refused_by_name() {
        for (backend, key) in [
            ("webdav", "bearer_token_command"),
            ("webdav", "unix_socket"),
            ("sftp", "ssh"),
            ("sftp", "key_file"),
            ("sftp", "key_use_agent"),
            ("sftp", "md5sum_command"),
            ("s3", "env_auth"),
            ("s3", "shared_credentials_file"),
            ("drive", "service_account_file"),
            ("azureblob", "use_msi"),
            ("azureblob", "use_az"),
            ("smb", "use_kerberos"),
            ("box", "box_config_file"),
        ] {
            let (field, reason) = check_remote(backend, &options(&["user", key]))
                .expect_err(&format!("{backend}.{key} must be refused"));
            assert_eq!(field, format!("options.{key}"));
            assert!(reason.starts_with("is refused"), "{reason}");
        }
        // Unknown options are refused too: an allow-list, not a deny-list.
        let (field, reason) =
            check_remote("s3", &options(&["no_such_option"])).expect_err("unknown option");
        assert_eq!(field, "options.no_such_option");
        assert!(reason.contains("not an option"), "{reason}");
    }

    #[test]
    fn wrapper_and_local_backends_are_refused() {
        for backend in [
            "local", "alias", "crypt", "union", "combine", "chunker", "hasher", "compress",
            "cache", "memory", "http",
        ] {
            let (field, reason) =
                check_remote(backend, &BTreeMap::new()).expect_err("refused backend");
            assert_eq!(field, "backend");
            assert!(reason.contains("cannot be a storage target"), "{reason}");
        }
        assert!(check_remote("nosuch", &BTreeMap::new()).is_err());
    }

    #[test]
    fn the_allow_list_never_names_a_refused_backend_or_option() {
        let backends: Vec<&str> = allowed_backends().collect();
        assert!(backends.len() > 40, "{backends:?}");
        for backend in backends {
            assert!(
                REFUSED_BACKENDS.iter().all(|(b, _)| *b != backend),
                "{backend}"
            );
            for option in allowed_options(backend).into_iter().flatten() {
                assert!(
                    option
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
                    "{backend}.{option}"
                );
                assert!(
                    REFUSED_OPTIONS.iter().all(|(o, _)| *o != option),
                    "{backend}.{option}"
                );
            }
        }
    }
}
