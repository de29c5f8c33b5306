//! The recovery kit: how to reach a storage target's restic repository with plain `restic`, so
//! that every repository backup can be listed and restored without Stowage. The storage
//! credentials themselves are never part of the kit (they are the user's own, entered in the
//! target); the kit names the variables to set and leaves their secret values as placeholders.

use crate::artifact::REPOSITORY_DIR;
use crate::secret::SecretString;
use crate::storage::StorageConfig;
use serde::{Deserialize, Serialize};

/// `POST /api/storage-targets/:id/recovery-kit`: the caller's current password, checked like a
/// sign-in (throttled), since the kit opens every backup on the target.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RecoveryKitRequest {
    pub current_password: SecretString,
}

/// Everything plain `restic` needs to open the target's repository.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecoveryKit {
    pub target_id: i64,
    pub target_name: String,
    /// restic's `--repo` value.
    pub repository: String,
    /// The repository's password (what `RESTIC_PASSWORD_FILE` should hold).
    pub password: SecretString,
    /// Variables to set before running restic (`NAME=value`; secrets as `<...>` placeholders).
    pub environment: Vec<String>,
    /// Extra restic options (`-o key=value`) the backend needs.
    pub options: Vec<String>,
    /// The commands to list, check and restore, in order.
    pub commands: Vec<String>,
    /// What else to know for this kind of target.
    pub notes: Vec<String>,
}

impl RecoveryKit {
    /// The kit as a sheet to print or keep offline: everything needed to restore without
    /// Stowage, the password included.
    pub fn text(&self) -> String {
        let mut out = format!(
            "Stowage recovery kit: storage target {:?} (id {})\n\nrepository: {}\npassword:   {}\n",
            self.target_name,
            self.target_id,
            self.repository,
            self.password.expose()
        );
        let sections = [
            ("Set these variables first", &self.environment),
            ("restic options this target needs", &self.options),
            ("Commands (in order)", &self.commands),
            ("Notes", &self.notes),
        ];
        for (title, lines) in sections {
            if !lines.is_empty() {
                out.push_str(&format!("\n{title}:\n"));
                for line in lines {
                    out.push_str(&format!("  {line}\n"));
                }
            }
        }
        out
    }
}

/// Where restic finds a target's repository, and what it must be told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepositoryAddress {
    pub repository: String,
    pub environment: Vec<String>,
    pub options: Vec<String>,
    pub notes: Vec<String>,
}

fn under(base: &str) -> String {
    match base.trim_matches('/') {
        "" => REPOSITORY_DIR.to_owned(),
        base => format!("{base}/{REPOSITORY_DIR}"),
    }
}

/// An rclone remote named `stowage` of `backend`, configured through rclone's environment
/// variables (restic's `rclone:` backend runs rclone, which reads them).
fn rclone_remote(backend: &str, settings: &[(&str, String)], path: &str) -> RepositoryAddress {
    let mut environment = vec![format!("RCLONE_CONFIG_STOWAGE_TYPE={backend}")];
    environment.extend(
        settings
            .iter()
            .map(|(k, v)| format!("RCLONE_CONFIG_STOWAGE_{}={v}", k.to_ascii_uppercase())),
    );
    RepositoryAddress {
        repository: format!("rclone:stowage:{path}"),
        environment,
        options: Vec::new(),
        notes: vec![
            "restic reaches this target through rclone (install rclone; passwords in RCLONE_CONFIG_* must be obscured with `rclone obscure`).".to_owned(),
        ],
    }
}

pub fn address(config: &StorageConfig) -> RepositoryAddress {
    let plain =
        |repository: String, environment: Vec<String>, options: Vec<String>| RepositoryAddress {
            repository,
            environment,
            options,
            notes: Vec::new(),
        };
    match config {
        StorageConfig::LocalDisk(c) => plain(
            format!("{}/{REPOSITORY_DIR}", c.base_path.trim_end_matches('/')),
            Vec::new(),
            Vec::new(),
        ),
        StorageConfig::S3(c) => {
            let address = c.address();
            let mut options = Vec::new();
            if !address.virtual_host {
                options.push("s3.bucket-lookup=path".to_owned());
            }
            plain(
                format!(
                    "s3:{}/{}/{}",
                    address.endpoint.trim_end_matches('/'),
                    c.bucket,
                    under(&c.prefix)
                ),
                vec![
                    format!("AWS_ACCESS_KEY_ID={}", c.access_key_id),
                    "AWS_SECRET_ACCESS_KEY=<the target's secret access key>".to_owned(),
                    format!("AWS_DEFAULT_REGION={}", address.region),
                ],
                options,
            )
        }
        StorageConfig::AzureBlob(c) => {
            let mut environment = vec![
                format!("AZURE_ACCOUNT_NAME={}", c.account),
                "AZURE_ACCOUNT_KEY=<the target's account key>".to_owned(),
            ];
            if !c.endpoint.is_empty() {
                environment.push(format!("AZURE_ENDPOINT_SUFFIX={}", c.endpoint));
            }
            plain(
                format!("azure:{}:/{}", c.container, under(&c.prefix)),
                environment,
                Vec::new(),
            )
        }
        StorageConfig::Sftp(c) => RepositoryAddress {
            repository: format!(
                "sftp://{}@{}:{}//{}",
                c.username,
                c.host,
                c.port,
                under(&c.base_path)
            ),
            environment: Vec::new(),
            options: Vec::new(),
            notes: vec![
                "restic runs the system's ssh: sign in with the target's key or password when it asks.".to_owned(),
            ],
        },
        StorageConfig::Webdav(c) => rclone_remote(
            "webdav",
            &[
                ("url", c.endpoint.clone()),
                ("user", c.username.clone()),
                ("pass", "<the target's password, obscured>".to_owned()),
            ],
            &under(&c.base_path),
        ),
        StorageConfig::Ftp(c) => rclone_remote(
            "ftp",
            &[
                ("host", c.host.clone()),
                ("port", c.port.to_string()),
                ("user", c.username.clone()),
                ("pass", "<the target's password, obscured>".to_owned()),
                ("explicit_tls", c.use_tls.to_string()),
            ],
            &under(&c.base_path),
        ),
        StorageConfig::GoogleDrive(c) => rclone_remote(
            "drive",
            &[
                ("client_id", c.client_id.clone()),
                ("client_secret", "<the target's client secret>".to_owned()),
                ("root_folder_id", c.folder_id.clone()),
                ("token", "<a token from `rclone authorize drive`>".to_owned()),
            ],
            REPOSITORY_DIR,
        ),
        StorageConfig::Rclone(c) => {
            let settings: Vec<(&str, String)> = c
                .options
                .keys()
                .map(|k| (k.as_str(), format!("<the target's {k}>")))
                .collect();
            rclone_remote(&c.backend, &settings, &under(&c.root))
        }
    }
}

/// The kit for a target whose repository has `password`.
pub fn kit(
    target_id: i64,
    target_name: &str,
    config: &StorageConfig,
    password: SecretString,
) -> RecoveryKit {
    let at = address(config);
    let options: String = at.options.iter().map(|o| format!(" -o {o}")).collect();
    let restic = format!("restic --repo '{}'{options}", at.repository);
    RecoveryKit {
        target_id,
        target_name: target_name.to_owned(),
        commands: vec![
            "umask 077 && printf '%s' '<password>' > ./stowage-repository.pass".to_owned(),
            "export RESTIC_PASSWORD_FILE=./stowage-repository.pass".to_owned(),
            format!("{restic} snapshots"),
            format!("{restic} snapshots --tag task-<task id>"),
            format!("{restic} ls <snapshot id>"),
            format!("{restic} restore <snapshot id> --target /restore/here"),
            format!("{restic} restore <snapshot id> --target /restore/here --include /one/folder"),
            format!("{restic} check --read-data"),
        ],
        repository: at.repository,
        password,
        environment: at.environment,
        options: at.options,
        notes: {
            let mut notes = at.notes;
            notes.push(
                "Snapshots are tagged stowage, task-<task id> and record-<record id>; the host is the node's name. Do not run restic prune while Stowage backs up into this repository."
                    .to_owned(),
            );
            notes
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::{LocalDiskConfig, StorageType};

    #[test]
    fn the_kit_sheet_holds_the_address_password_and_commands() {
        let local = StorageConfig::LocalDisk(LocalDiskConfig {
            base_path: "/srv/backups".to_owned(),
        });
        let sheet = kit(3, "nas", &local, SecretString::new("s3cr3t-pw")).text();
        assert!(sheet.contains("storage target \"nas\" (id 3)"), "{sheet}");
        assert!(
            sheet.contains("repository: /srv/backups/restic\n"),
            "{sheet}"
        );
        assert!(sheet.contains("password:   s3cr3t-pw\n"), "{sheet}");
        assert!(
            sheet.contains("  restic --repo '/srv/backups/restic' check --read-data\n"),
            "{sheet}"
        );
        assert!(
            !sheet.contains("Set these variables"),
            "a local disk needs none: {sheet}"
        );
    }

    #[test]
    fn each_target_type_has_a_restic_address_without_its_secrets() {
        let local = StorageConfig::LocalDisk(LocalDiskConfig {
            base_path: "/srv/backups/".to_owned(),
        });
        assert_eq!(address(&local).repository, "/srv/backups/restic");
        let s3 = StorageConfig::parse(
            StorageType::S3,
            &serde_json::json!({"endpoint": "http://127.0.0.1:9000", "bucket": "b",
                "accessKeyId": "AK", "secretAccessKey": "very-secret", "forcePathStyle": true,
                "prefix": "/nightly/"}),
        )
        .expect("s3");
        let at = address(&s3);
        assert_eq!(at.repository, "s3:http://127.0.0.1:9000/b/nightly/restic");
        assert_eq!(at.options, ["s3.bucket-lookup=path"]);
        assert!(at.environment.contains(&"AWS_ACCESS_KEY_ID=AK".to_owned()));
        let sftp = StorageConfig::parse(
            StorageType::Sftp,
            &serde_json::json!({"host": "nas", "port": 2222, "username": "u",
                "password": "pw-secret", "basePath": "/volume1/b", "insecureSkipHostKeyCheck": true}),
        )
        .expect("sftp");
        assert_eq!(
            address(&sftp).repository,
            "sftp://u@nas:2222//volume1/b/restic"
        );
        let dav = StorageConfig::parse(
            StorageType::Webdav,
            &serde_json::json!({"endpoint": "https://dav.example", "username": "u",
                "password": "dav-secret", "basePath": "b"}),
        )
        .expect("webdav");
        assert_eq!(address(&dav).repository, "rclone:stowage:b/restic");
        for config in [&s3, &sftp, &dav] {
            let text = format!("{:?}", kit(1, "t", config, SecretString::new("repo-pw")));
            for secret in ["very-secret", "pw-secret", "dav-secret"] {
                assert!(!text.contains(secret), "{text}");
            }
        }
    }
}
