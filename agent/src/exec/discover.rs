//! `discover_databases`: lists the databases a connection can see with the engine's own client
//! (connected through [`crate::dbconn`], so the password is never in its arguments).

use crate::dbconn;
use std::time::Duration;
use stowage_shared::ErrorCode;
use stowage_shared::databases::{DbConnection, DbEngine};
use stowage_shared::protocol::CommandError;
use tokio::process::Command;

const TIMEOUT: Duration = Duration::from_secs(30);

fn error(code: ErrorCode, message: impl Into<String>) -> CommandError {
    CommandError {
        code,
        message: message.into(),
    }
}

pub async fn discover(conn: &DbConnection) -> Result<Vec<String>, CommandError> {
    let prepared = dbconn::prepare(conn, conn.engine.clients())?;
    let mut cmd = Command::new(&prepared.program);
    cmd.args(&prepared.args)
        .envs(prepared.env.iter().map(|(k, v)| (k, v)))
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    for name in dbconn::INHERITED_SECRETS {
        cmd.env_remove(name);
    }
    match conn.engine {
        DbEngine::Mysql => cmd.args([
            "--connect-timeout=10",
            "--batch",
            "--skip-column-names",
            "-e",
            "SHOW DATABASES",
        ]),
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
                dbconn::reason(conn, &out.stderr)
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
