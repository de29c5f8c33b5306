//! `discover_databases`: lists the databases a connection can see with the engine's own client.
//! The password goes to the client in a file only it reads (a MySQL option file, a PostgreSQL
//! password file; both 0600 and removed afterwards) — never in its arguments or environment,
//! where `ps` and `/proc` would show it.

use crate::system::find_on_path;
use std::io::Write;
use std::time::Duration;
use stowage_shared::ErrorCode;
use stowage_shared::api::CommandError;
use stowage_shared::databases::{DbConnection, DbEngine, mysql_option_value, pgpass_field};
use tokio::process::Command;

const TIMEOUT: Duration = Duration::from_secs(30);

fn error(code: ErrorCode, message: impl Into<String>) -> CommandError {
    CommandError {
        code,
        message: message.into(),
    }
}

/// A 0600 file holding `contents`, removed when dropped.
fn secret_file(contents: &str) -> Result<tempfile::NamedTempFile, CommandError> {
    let failed = |e: std::io::Error| {
        error(
            ErrorCode::DatabaseConnectFailed,
            format!("writing the client's password file: {e}"),
        )
    };
    let mut file = tempfile::Builder::new()
        .prefix(".stowage-db-")
        .tempfile()
        .map_err(failed)?;
    file.write_all(contents.as_bytes()).map_err(failed)?;
    file.flush().map_err(failed)?;
    Ok(file)
}

/// The client's command for a connection, with the file that carries its password.
pub fn client(conn: &DbConnection) -> Result<(Command, tempfile::NamedTempFile), CommandError> {
    let program = conn
        .engine
        .clients()
        .iter()
        .find_map(|name| find_on_path(name))
        .ok_or_else(|| {
            error(
                ErrorCode::NodeMissingTool,
                format!(
                    "this node has no {}; install the database client and restart the agent",
                    conn.engine.clients().join(" or ")
                ),
            )
        })?;
    let mut cmd = Command::new(program);
    cmd.env_remove("MYSQL_PWD")
        .env_remove("PGPASSWORD")
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
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
            let file = secret_file(&format!(
                "[client]\nuser={}\npassword={}\n{place}\nconnect-timeout=10\n",
                mysql_option_value(&conn.user),
                mysql_option_value(conn.password.expose()),
            ))?;
            // `--defaults-extra-file` must come first.
            cmd.arg(format!("--defaults-extra-file={}", file.path().display()));
            Ok((cmd, file))
        }
        DbEngine::Postgresql => {
            let file = secret_file(&format!(
                "*:*:*:{}:{}\n",
                pgpass_field(&conn.user),
                pgpass_field(conn.password.expose())
            ))?;
            cmd.env("PGPASSFILE", file.path())
                .env("PGCONNECT_TIMEOUT", "10")
                .args(["-h", &conn.host, "-p", &conn.port.to_string()])
                .args(["-U", &conn.user, "-w"]);
            Ok((cmd, file))
        }
    }
}

/// The client's complaint, without the password should it echo it.
fn reason(conn: &DbConnection, stderr: &[u8]) -> String {
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

pub async fn discover(conn: &DbConnection) -> Result<Vec<String>, CommandError> {
    let (mut cmd, _password_file) = client(conn)?;
    match conn.engine {
        DbEngine::Mysql => cmd.args(["--batch", "--skip-column-names", "-e", "SHOW DATABASES"]),
        DbEngine::Postgresql => cmd.args([
            "-d",
            "postgres",
            "-At",
            "-c",
            "SELECT datname FROM pg_database WHERE datallowconn AND NOT datistemplate ORDER BY 1",
        ]),
    };
    let out = tokio::time::timeout(TIMEOUT, cmd.output())
        .await
        .map_err(|_| {
            error(
                ErrorCode::DatabaseConnectFailed,
                format!("the database did not answer within {}s", TIMEOUT.as_secs()),
            )
        })?
        .map_err(|e| {
            error(
                ErrorCode::NodeMissingTool,
                format!("running the client: {e}"),
            )
        })?;
    if !out.status.success() {
        return Err(error(
            ErrorCode::DatabaseConnectFailed,
            format!(
                "{}:{} as {}: {}",
                conn.host,
                conn.port,
                conn.user,
                reason(conn, &out.stderr)
            ),
        ));
    }
    const SYSTEM: [&str; 3] = ["information_schema", "performance_schema", "sys"];
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !SYSTEM.contains(l))
        .map(str::to_owned)
        .collect())
}
