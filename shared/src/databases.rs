//! Database connections and dumps: what a request may name, checked once here for the Worker and
//! the agent, and the pure decisions around dumps (which options a user may add, where each
//! database's dump lies in an artifact, what a restore will do).

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

/// Programs a piece of work needs: one of each group (e.g. `mariadb-dump` or `mysqldump`).
pub type ToolGroups = &'static [&'static [&'static str]];

impl DbEngine {
    pub fn default_port(self) -> u16 {
        match self {
            DbEngine::Mysql => 3306,
            DbEngine::Postgresql => 5432,
        }
    }

    /// Client programs that can list databases and run SQL, in order of preference.
    pub fn clients(self) -> &'static [&'static str] {
        match self {
            DbEngine::Mysql => &["mariadb", "mysql"],
            DbEngine::Postgresql => &["psql"],
        }
    }

    /// The dump programs, in order of preference.
    pub fn dumpers(self) -> &'static [&'static str] {
        match self {
            DbEngine::Mysql => &["mariadb-dump", "mysqldump"],
            DbEngine::Postgresql => &["pg_dump"],
        }
    }

    /// What a node needs to back up a database of this engine: the dump program, and the client
    /// (it lists the databases and, for PostgreSQL, `pg_dumpall` dumps the globals).
    pub fn backup_tools(self, globals: bool) -> ToolGroups {
        match (self, globals) {
            (DbEngine::Mysql, _) => &[&["mariadb-dump", "mysqldump"], &["mariadb", "mysql"]],
            (DbEngine::Postgresql, false) => &[&["pg_dump"], &["psql"]],
            (DbEngine::Postgresql, true) => &[&["pg_dump"], &["psql"], &["pg_dumpall"]],
        }
    }

    /// What a node needs to list databases and restore a dump (the client runs the SQL).
    pub fn client_tools(self) -> ToolGroups {
        match self {
            DbEngine::Mysql => &[&["mariadb", "mysql"]],
            DbEngine::Postgresql => &[&["psql"]],
        }
    }

    /// Databases that hold the server's own workings; "every database" leaves them out.
    pub fn system_databases(self) -> &'static [&'static str] {
        match self {
            DbEngine::Mysql => &["information_schema", "performance_schema", "sys", "mysql"],
            DbEngine::Postgresql => &[],
        }
    }

    /// The longest database name the server takes (bytes).
    fn max_name_bytes(self) -> usize {
        match self {
            DbEngine::Mysql => 64,
            DbEngine::Postgresql => 63,
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
    pub reason: String,
}

impl ConnectionError {
    fn new(field: &'static str, reason: impl Into<String>) -> Self {
        Self {
            field,
            reason: reason.into(),
        }
    }
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

/// A connection, checked: a host (default `127.0.0.1`), a port (the engine's default), a user;
/// every value fit for an option file, none that a client would read as an option.
pub fn check_connection(
    engine: DbEngine,
    host: &str,
    port: Option<u16>,
    user: &str,
    password: &SecretString,
) -> Result<DbConnection, ConnectionError> {
    let host = match host.trim() {
        "" => "127.0.0.1",
        h => h,
    };
    if host.len() > 255 || !plain(host) || host.starts_with('-') || host.contains(' ') {
        return Err(ConnectionError::new(
            "host",
            "must be a host name, an IP address or a socket path",
        ));
    }
    let user = user.trim();
    if user.is_empty() || user.len() > 128 || !plain(user) || user.starts_with('-') {
        return Err(ConnectionError::new(
            "user",
            "is required (at most 128 characters, one line)",
        ));
    }
    if password.expose().len() > 1024 || !plain(password.expose()) {
        return Err(ConnectionError::new(
            "password",
            "must be one line of at most 1024 characters",
        ));
    }
    let port = match port {
        Some(0) => return Err(ConnectionError::new("port", "must be 1 to 65535")),
        Some(p) => p,
        None => engine.default_port(),
    };
    Ok(DbConnection {
        engine,
        host: host.to_owned(),
        port,
        user: user.to_owned(),
        password: password.clone(),
    })
}

impl DiscoverRequest {
    pub fn connection(&self) -> Result<DbConnection, ConnectionError> {
        check_connection(
            self.engine,
            &self.host,
            self.port,
            &self.user,
            &self.password,
        )
    }
}

/// A database name Stowage can hand to the engine's programs and quote in SQL: one line, no
/// quotes, backticks or backslashes (so quoting it can never go wrong), not starting with `-`
/// (it would read as an option), within the server's length limit.
pub fn check_database_name(engine: DbEngine, raw: &str) -> Result<String, String> {
    let name = raw.trim();
    if name.is_empty() || name.len() > engine.max_name_bytes() {
        return Err(format!(
            "{name:?}: a database name is 1 to {} bytes",
            engine.max_name_bytes()
        ));
    }
    if name.starts_with('-')
        || name
            .chars()
            .any(|c| c.is_control() || matches!(c, '\'' | '"' | '`' | '\\'))
    {
        return Err(format!(
            "{name:?}: a database name must not start with - or hold quotes, backticks, backslashes or control characters"
        ));
    }
    Ok(name.to_owned())
}

/// Options a user may add to the dump program, by engine: the ones that choose what is dumped
/// and how rows are written. Anything that could change where the dump goes, how the program
/// connects or the format Stowage restores from is refused. `true` marks options that take a
/// value (`--name=value`).
const MYSQL_OPTIONS: &[(&str, bool)] = &[
    ("--ignore-table", true),
    ("--no-data", false),
    ("--no-create-info", false),
    ("--skip-triggers", false),
    ("--skip-extended-insert", false),
    ("--complete-insert", false),
    ("--insert-ignore", false),
    ("--skip-comments", false),
    ("--skip-tz-utc", false),
    ("--order-by-primary", false),
    ("--no-tablespaces", false),
    ("--where", true),
    ("--max-allowed-packet", true),
    ("--net-buffer-length", true),
    ("--default-character-set", true),
    ("--set-gtid-purged", true),
    ("--column-statistics", true),
    ("--compress", false),
    ("--ssl", false),
    ("--ssl-ca", true),
    ("--ssl-mode", true),
    ("--ssl-verify-server-cert", false),
];
const POSTGRESQL_OPTIONS: &[(&str, bool)] = &[
    ("--table", true),
    ("--exclude-table", true),
    ("--exclude-table-data", true),
    ("--schema", true),
    ("--exclude-schema", true),
    ("--schema-only", false),
    ("--no-privileges", false),
    ("--no-comments", false),
    ("--no-publications", false),
    ("--no-subscriptions", false),
    ("--no-security-labels", false),
    ("--no-tablespaces", false),
    ("--no-toast-compression", false),
    ("--no-unlogged-table-data", false),
    ("--no-large-objects", false),
    ("--inserts", false),
    ("--column-inserts", false),
    ("--rows-per-insert", true),
    ("--quote-all-identifiers", false),
    ("--lock-wait-timeout", true),
    ("--extra-float-digits", true),
    ("--enable-row-security", false),
    ("--load-via-partition-root", false),
    ("--serializable-deferrable", false),
    ("--encoding", true),
];

/// Most extra options one task may give.
pub const MAX_DUMP_OPTIONS: usize = 32;

/// Checks the extra options of a dump against the engine's allow-list.
pub fn check_dump_options(engine: DbEngine, raw: &[String]) -> Result<Vec<String>, String> {
    if raw.len() > MAX_DUMP_OPTIONS {
        return Err(format!("at most {MAX_DUMP_OPTIONS} options"));
    }
    let allowed = match engine {
        DbEngine::Mysql => MYSQL_OPTIONS,
        DbEngine::Postgresql => POSTGRESQL_OPTIONS,
    };
    let mut out = Vec::with_capacity(raw.len());
    for option in raw {
        let option = option.trim();
        let (name, value) = match option.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (option, None),
        };
        let Some(&(_, takes_value)) = allowed.iter().find(|(n, _)| *n == name) else {
            let names: Vec<&str> = allowed.iter().map(|(n, _)| *n).collect();
            return Err(format!(
                "{name:?} is not an option Stowage passes on; allowed: {}",
                names.join(", ")
            ));
        };
        match value {
            Some(v) if !takes_value => {
                return Err(format!("{name} takes no value (got {v:?})"));
            }
            None if takes_value => return Err(format!("{name} needs a value: {name}=…")),
            Some(v) if v.is_empty() || v.len() > 512 || !plain(v) => {
                return Err(format!(
                    "{name}: the value must be one line of 1 to 512 bytes"
                ));
            }
            _ => {}
        }
        out.push(option.to_owned());
    }
    Ok(out)
}

/// Where a database task's data comes from, as stored on the task (the password is sealed on
/// its own and joins only in the command to the agent).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DbSource {
    pub host: String,
    pub port: u16,
    pub user: String,
    /// The databases to dump; empty means every database the user can see (system ones aside).
    pub databases: Vec<String>,
    /// Extra options for the dump program (checked against [`check_dump_options`]).
    #[serde(default)]
    pub options: Vec<String>,
    /// PostgreSQL: dump the cluster's roles and tablespaces too (`pg_dumpall --globals-only`).
    #[serde(default)]
    pub include_globals: bool,
}

impl DbSource {
    pub fn connection(&self, engine: DbEngine, password: SecretString) -> DbConnection {
        DbConnection {
            engine,
            host: self.host.clone(),
            port: self.port,
            user: self.user.clone(),
            password,
        }
    }
}

/// Where one database's dump lies in the uncompressed artifact: Stowage writes a short preamble
/// (a comment and the statement that selects the database, so the whole file also restores with
/// the standard client), then the dump program's output. A restore reads exactly these bytes,
/// so nothing in the dump's contents can make it misread where a database starts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DumpSection {
    /// The database; empty for PostgreSQL's globals.
    pub database: String,
    /// The roles and tablespaces of a PostgreSQL cluster (`pg_dumpall --globals-only`).
    #[serde(default)]
    pub globals: bool,
    /// The offset of the preamble, and its length.
    pub offset: u64,
    pub preamble: u64,
    /// The dump program's output.
    pub bytes: u64,
}

impl DumpSection {
    /// Where the dump program's output starts.
    pub fn start(&self) -> u64 {
        self.offset + self.preamble
    }
}

/// One part of a database restore: a section of the artifact into a database (the globals go
/// to the server itself, `into` empty).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RestoreStep {
    pub section: DumpSection,
    pub into: String,
}

/// Which sections of a dump a restore applies, and where. `databases` empty means every
/// database of the backup; `rename` restores the one chosen database under another name; the
/// globals go back only when asked for. Steps come in the artifact's order, globals first.
pub fn plan_restore(
    engine: DbEngine,
    sections: &[DumpSection],
    databases: &[String],
    rename: Option<&str>,
    globals: bool,
) -> Result<Vec<RestoreStep>, String> {
    let held: Vec<&DumpSection> = sections.iter().filter(|s| !s.globals).collect();
    for wanted in databases {
        if !held.iter().any(|s| &s.database == wanted) {
            let names: Vec<&str> = held.iter().map(|s| s.database.as_str()).collect();
            return Err(format!(
                "the backup holds no database {wanted:?} (it holds {})",
                names.join(", ")
            ));
        }
    }
    let chosen: Vec<&DumpSection> = held
        .into_iter()
        .filter(|s| databases.is_empty() || databases.contains(&s.database))
        .collect();
    let rename = match rename.map(str::trim).filter(|r| !r.is_empty()) {
        None => None,
        Some(name) => {
            if chosen.len() != 1 {
                return Err(format!(
                    "a new database name needs exactly one database to restore ({} chosen); name it in databases",
                    chosen.len()
                ));
            }
            Some(check_database_name(engine, name)?)
        }
    };
    let mut steps = Vec::new();
    if globals {
        let section = sections
            .iter()
            .find(|s| s.globals)
            .ok_or("the backup holds no globals (the task did not include them)")?;
        steps.push(RestoreStep {
            section: section.clone(),
            into: String::new(),
        });
    }
    for section in chosen {
        steps.push(RestoreStep {
            section: section.clone(),
            into: rename.clone().unwrap_or_else(|| section.database.clone()),
        });
    }
    if steps.is_empty() {
        return Err("the backup holds no database to restore".to_owned());
    }
    Ok(steps)
}

/// The file a database's dump is stored as in a repository snapshot: `/mysql/<db>.sql` or
/// `/postgresql/<db>.sql`, and PostgreSQL's globals as `/postgresql-globals.sql` (outside the
/// databases' folder, so no database name can collide with it). `%` and `/` in a name are
/// percent-encoded, so every database is exactly one file of its folder.
pub fn snapshot_file(engine: DbEngine, section: &DumpSection) -> String {
    let folder = match engine {
        DbEngine::Mysql => "mysql",
        DbEngine::Postgresql => "postgresql",
    };
    if section.globals {
        return format!("/{folder}-globals.sql");
    }
    let name = section.database.replace('%', "%25").replace('/', "%2F");
    format!("/{folder}/{name}.sql")
}

/// A MySQL identifier in backticks (names are checked to hold none).
pub fn mysql_ident(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

/// A PostgreSQL identifier in double quotes.
pub fn pg_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A value in a libpq connection string (`dbname='…'`), quoted so that a name is only ever a name.
pub fn pg_conninfo_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('\'');
    for c in value.chars() {
        if c == '\\' || c == '\'' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('\'');
    out
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

    #[test]
    fn every_database_is_one_file_of_its_folder_in_a_snapshot() {
        let section = |database: &str, globals| DumpSection {
            database: database.to_owned(),
            globals,
            offset: 0,
            preamble: 0,
            bytes: 0,
        };
        let pg = |db: &str| snapshot_file(DbEngine::Postgresql, &section(db, false));
        assert_eq!(
            snapshot_file(DbEngine::Mysql, &section("shop", false)),
            "/mysql/shop.sql"
        );
        assert_eq!(pg("a/../b"), "/postgresql/a%2F..%2Fb.sql");
        assert_eq!(pg("100%"), "/postgresql/100%25.sql");
        assert_eq!(pg(".."), "/postgresql/...sql");
        assert_ne!(pg("a%2Fb"), pg("a/b"));
        assert_eq!(
            snapshot_file(DbEngine::Postgresql, &section("", true)),
            "/postgresql-globals.sql"
        );
        assert_ne!(pg("globals"), "/postgresql-globals.sql");
    }

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
        assert_eq!(pg_conninfo_value(r"it's\x"), r"'it\'s\\x'");
        assert_eq!(pg_ident("a\"b"), "\"a\"\"b\"");
        assert_eq!(mysql_ident("shop"), "`shop`");
    }

    #[test]
    fn database_names_cannot_become_options_or_break_quoting() {
        assert_eq!(
            check_database_name(DbEngine::Mysql, " shop_2 "),
            Ok("shop_2".to_owned())
        );
        assert!(check_database_name(DbEngine::Postgresql, "Données clients").is_ok());
        for bad in ["", "-all", "a`b", "a'b", "a\"b", "a\\b", "a\nb"] {
            assert!(
                check_database_name(DbEngine::Mysql, bad).is_err(),
                "{bad:?}"
            );
        }
        assert!(check_database_name(DbEngine::Postgresql, &"x".repeat(64)).is_err());
        assert!(check_database_name(DbEngine::Mysql, &"x".repeat(64)).is_ok());
    }

    #[test]
    fn only_allow_listed_dump_options_pass() {
        let ok = check_dump_options(
            DbEngine::Postgresql,
            &["--exclude-table=audit_*".into(), " --no-privileges ".into()],
        )
        .expect("allowed");
        assert_eq!(ok, ["--exclude-table=audit_*", "--no-privileges"]);
        for bad in [
            "--file=/etc/passwd",
            "-f/tmp/x",
            "--dbname=host=evil",
            "--no-privileges=yes",
            "--exclude-table",
            "--exclude-table=",
            "--format=custom",
        ] {
            assert!(
                check_dump_options(DbEngine::Postgresql, &[bad.into()]).is_err(),
                "{bad}"
            );
        }
        assert!(
            check_dump_options(DbEngine::Mysql, &["--ignore-table=shop.sessions".into()]).is_ok()
        );
        for bad in [
            "--result-file=/tmp/x",
            "--defaults-file=/root/.my.cnf",
            "--password=x",
            "--tab=/tmp",
        ] {
            assert!(
                check_dump_options(DbEngine::Mysql, &[bad.into()]).is_err(),
                "{bad}"
            );
        }
    }

    fn section(database: &str, offset: u64) -> DumpSection {
        DumpSection {
            database: database.into(),
            globals: database.is_empty(),
            offset,
            preamble: 10,
            bytes: 90,
        }
    }

    #[test]
    fn restore_plans_name_their_sections() {
        let sections = [section("", 0), section("shop", 100), section("blog", 200)];
        let into = |steps: Vec<RestoreStep>| -> Vec<(String, u64)> {
            steps
                .into_iter()
                .map(|s| (s.into, s.section.start()))
                .collect()
        };
        let all = plan_restore(DbEngine::Postgresql, &sections, &[], None, false).expect("all");
        assert_eq!(into(all), [("shop".into(), 110), ("blog".into(), 210)]);
        let renamed = plan_restore(
            DbEngine::Postgresql,
            &sections,
            &["blog".into()],
            Some("blog_copy"),
            true,
        )
        .expect("renamed");
        assert_eq!(
            into(renamed),
            [(String::new(), 10), ("blog_copy".into(), 210)]
        );
        for (dbs, rename, globals) in [
            (vec!["nope".to_owned()], None, false),
            (vec![], Some("copy"), false),
            (vec!["shop".to_owned()], Some("bad`name"), false),
        ] {
            assert!(
                plan_restore(DbEngine::Mysql, &sections, &dbs, rename, globals).is_err(),
                "{dbs:?} {rename:?}"
            );
        }
        assert!(plan_restore(DbEngine::Mysql, &sections[1..], &[], None, true).is_err());
    }
}
