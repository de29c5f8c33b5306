//! How the agent hands a database connection to the engine's own programs (`mariadb`,
//! `mariadb-dump`, `psql`, `pg_dump`): the password goes in a file only they read — a MySQL option
//! file or a PostgreSQL password file, 0600 and removed when dropped — never in their arguments
//! or environment, where `ps` and `/proc` would show it.

use crate::system::find_on_path;
use std::io::Write;
use std::path::PathBuf;
use stowage_shared::ErrorCode;
use stowage_shared::databases::{DbConnection, DbEngine, mysql_option_value, pgpass_field};
use stowage_shared::protocol::CommandError;

/// A program ready to connect: its path, the leading arguments and environment that point it at
/// the connection, and the password file those name.
#[derive(Debug)]
pub struct Prepared {
    pub program: PathBuf,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    /// Holds the password; removed when this is dropped.
    pub secret: tempfile::NamedTempFile,
}

fn error(code: ErrorCode, message: impl Into<String>) -> CommandError {
    CommandError {
        code,
        message: message.into(),
    }
}

fn secret_file(contents: &str) -> Result<tempfile::NamedTempFile, CommandError> {
    let failed = |e: std::io::Error| {
        error(
            ErrorCode::DatabaseConnectFailed,
            format!("writing the client's password file: {e}"),
        )
    };
    // tempfile creates the file 0600.
    let mut file = tempfile::Builder::new()
        .prefix(".stowage-db-")
        .tempfile()
        .map_err(failed)?;
    file.write_all(contents.as_bytes()).map_err(failed)?;
    file.flush().map_err(failed)?;
    Ok(file)
}

/// The first of `programs` on PATH, prepared for `conn`.
pub fn prepare(conn: &DbConnection, programs: &[&str]) -> Result<Prepared, CommandError> {
    let program = programs
        .iter()
        .find_map(|name| find_on_path(name))
        .ok_or_else(|| {
            error(
                ErrorCode::NodeMissingTool,
                format!(
                    "this node has no {}; install the database client tools and restart the agent",
                    programs.join(" or ")
                ),
            )
        })?;
    match conn.engine {
        DbEngine::Mysql => {
            let place = if conn.host.starts_with('/') {
                format!("socket={}", mysql_option_value(&conn.host))
            } else {
                format!(
                    "host={}\nport={}\nprotocol=TCP",
                    mysql_option_value(&conn.host),
                    conn.port
                )
            };
            let secret = secret_file(&format!(
                "[client]\nuser={}\npassword={}\n{place}\n",
                mysql_option_value(&conn.user),
                mysql_option_value(conn.password.expose()),
            ))?;
            Ok(Prepared {
                program,
                // It must come first.
                args: vec![format!("--defaults-extra-file={}", secret.path().display())],
                env: Vec::new(),
                secret,
            })
        }
        DbEngine::Postgresql => {
            let secret = secret_file(&format!(
                "*:*:*:{}:{}\n",
                pgpass_field(&conn.user),
                pgpass_field(conn.password.expose())
            ))?;
            Ok(Prepared {
                program,
                args: vec![
                    "-h".into(),
                    conn.host.clone(),
                    "-p".into(),
                    conn.port.to_string(),
                    "-U".into(),
                    conn.user.clone(),
                    "-w".into(),
                ],
                env: vec![
                    (
                        "PGPASSFILE".into(),
                        secret.path().to_string_lossy().into_owned(),
                    ),
                    ("PGCONNECT_TIMEOUT".into(), "10".into()),
                ],
                secret,
            })
        }
    }
}

/// Passwords given by the environment the agent was started with never reach a client.
pub const INHERITED_SECRETS: [&str; 2] = ["MYSQL_PWD", "PGPASSWORD"];

/// A client's complaint, without the password should it echo it.
pub fn reason(conn: &DbConnection, stderr: &[u8]) -> String {
    let text = String::from_utf8_lossy(stderr);
    let text = text.trim();
    let password = conn.password.expose();
    let text = if password.is_empty() {
        text.to_owned()
    } else {
        text.replace(password, "********")
    };
    text.lines().take(5).collect::<Vec<_>>().join("; ")
}
