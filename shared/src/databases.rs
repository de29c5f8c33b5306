//! Database connections: what a request may name, checked once here for the Worker and the agent.
//! (Dumps and restores build on these; discovery lists what a connection can see.)

use crate::secret::SecretString;
use serde::{Deserialize, Serialize};

/// The database servers Stowage can talk to over the network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DbEngine {
    /// MySQL and MariaDB.
    Mysql,
    Postgresql,
}

impl DbEngine {
    pub fn default_port(self) -> u16 {
        match self {
            DbEngine::Mysql => 3306,
            DbEngine::Postgresql => 5432,
        }
    }

    /// Client programs that can list databases, in order of preference.
    pub fn clients(self) -> &'static [&'static str] {
        match self {
            DbEngine::Mysql => &["mariadb", "mysql"],
            DbEngine::Postgresql => &["psql"],
        }
    }
}

/// A connection as the agent receives it (inside a sealed command).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DbConnection {
    #[serde(rename = "type")]
    pub engine: DbEngine,
    /// A host name or IP address, or a Unix socket directory (PostgreSQL) / file (MySQL).
    pub host: String,
    pub port: u16,
    pub user: String,
    pub password: SecretString,
}

/// `POST /api/database/discover`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DiscoverRequest {
    /// The node whose agent connects; any online node with the client when absent.
    #[serde(default)]
    pub node_id: Option<i64>,
    #[serde(rename = "type")]
    pub engine: DbEngine,
    #[serde(default)]
    pub host: String,
    #[serde(default)]
    pub port: Option<u16>,
    pub user: String,
    #[serde(default = "empty_secret")]
    pub password: SecretString,
}

fn empty_secret() -> SecretString {
    SecretString::new("")
}

/// The databases a connection can see.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DiscoverOutput {
    pub node_id: i64,
    pub databases: Vec<String>,
}

/// A field a connection cannot use, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionError {
    pub field: &'static str,
    pub reason: &'static str,
}

impl std::fmt::Display for ConnectionError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.reason)
    }
}

/// Text that goes into a client's option or password file: no line breaks or NULs, which could
/// end the value and start another option.
fn plain(value: &str) -> bool {
    !value.chars().any(|c| c == '\n' || c == '\r' || c == '\0')
}

impl DiscoverRequest {
    /// The connection, checked: a host (default `127.0.0.1`), a port (the engine's default), a
    /// user; every value fit for an option file.
    pub fn connection(&self) -> Result<DbConnection, ConnectionError> {
        let host = match self.host.trim() {
            "" => "127.0.0.1",
            h => h,
        };
        if host.len() > 255 || !plain(host) || host.starts_with('-') || host.contains(' ') {
            return Err(ConnectionError {
                field: "host",
                reason: "must be a host name, an IP address or a socket path",
            });
        }
        let user = self.user.trim();
        if user.is_empty() || user.len() > 128 || !plain(user) || user.starts_with('-') {
            return Err(ConnectionError {
                field: "user",
                reason: "is required (at most 128 characters, one line)",
            });
        }
        if self.password.expose().len() > 1024 || !plain(self.password.expose()) {
            return Err(ConnectionError {
                field: "password",
                reason: "must be one line of at most 1024 characters",
            });
        }
        let port = match self.port {
            Some(0) => {
                return Err(ConnectionError {
                    field: "port",
                    reason: "must be 1 to 65535",
                });
            }
            Some(p) => p,
            None => self.engine.default_port(),
        };
        Ok(DbConnection {
            engine: self.engine,
            host: host.to_owned(),
            port,
            user: user.to_owned(),
            password: self.password.clone(),
        })
    }
}

/// A value as MySQL option files read it: double-quoted, with `\` and `"` escaped.
pub fn mysql_option_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        if c == '\\' || c == '"' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// A field of a PostgreSQL password file line (`host:port:db:user:password`): `:` and `\`
/// escaped with `\`.
pub fn pgpass_field(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        if c == '\\' || c == ':' {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(host: &str, user: &str, password: &str, port: Option<u16>) -> DiscoverRequest {
        DiscoverRequest {
            node_id: None,
            engine: DbEngine::Postgresql,
            host: host.into(),
            port,
            user: user.into(),
            password: SecretString::new(password),
        }
    }

    #[test]
    fn connections_take_defaults_and_refuse_what_could_inject_options() {
        let c = req("", "backup", "pw", None).connection().expect("valid");
        assert_eq!((c.host.as_str(), c.port), ("127.0.0.1", 5432));
        assert_eq!(
            req("db.internal", "u", "", Some(6543))
                .connection()
                .map(|c| c.port),
            Ok(6543)
        );
        let field = |r: DiscoverRequest| r.connection().map_err(|e| e.field).err();
        assert_eq!(field(req("", "", "pw", None)), Some("user"));
        assert_eq!(field(req("", "-U root", "pw", None)), Some("user"));
        assert_eq!(field(req("--host=evil", "u", "pw", None)), Some("host"));
        assert_eq!(field(req("a b", "u", "pw", None)), Some("host"));
        assert_eq!(
            field(req("h", "u", "pw\nhost=evil", None)),
            Some("password")
        );
        assert_eq!(field(req("h", "u", "pw", Some(0))), Some("port"));
    }

    #[test]
    fn secrets_are_escaped_for_the_clients_files() {
        assert_eq!(mysql_option_value(r#"a"b\c"#), r#""a\"b\\c""#);
        assert_eq!(pgpass_field(r"a:b\c"), r"a\:b\\c");
    }
}
