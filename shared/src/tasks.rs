//! Backup tasks: the rules a task must meet before it is stored, checked the same way by the Worker
//! and (for the run spec) by the agent. Existence of the node and the targets is the Worker's
//! business; everything that can be judged from the request alone is here.

use crate::databases::{
    DbEngine, DbSource, check_connection, check_database_name, check_dump_options,
};
use crate::schedule::Schedule;
use crate::secret::SecretString;
use crate::validate::{FieldError, absolute_path};
use serde::{Deserialize, Serialize};

pub const MAX_SOURCES: usize = 64;
pub const MAX_EXCLUDES: usize = 256;
pub const MAX_TARGETS: usize = 8;
pub const MAX_TAGS: usize = 20;

/// What a task backs up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskType {
    File,
    /// MySQL and MariaDB.
    Mysql,
    Postgresql,
    Sqlite,
}

impl TaskType {
    pub const ALL: [TaskType; 4] = [
        TaskType::File,
        TaskType::Mysql,
        TaskType::Postgresql,
        TaskType::Sqlite,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TaskType::File => "file",
            TaskType::Mysql => "mysql",
            TaskType::Postgresql => "postgresql",
            TaskType::Sqlite => "sqlite",
        }
    }

    /// The type's name; `pgsql` is BackupX's other spelling of `postgresql`.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "pgsql" => Some(TaskType::Postgresql),
            _ => Self::ALL.into_iter().find(|t| t.as_str() == text),
        }
    }

    /// The database server engine, for the two types that dump one.
    pub fn engine(self) -> Option<DbEngine> {
        match self {
            TaskType::Mysql => Some(DbEngine::Mysql),
            TaskType::Postgresql => Some(DbEngine::Postgresql),
            TaskType::File | TaskType::Sqlite => None,
        }
    }

    /// The artifact's extension before any compression's.
    pub fn extension(self) -> &'static str {
        match self {
            TaskType::File => "tar",
            TaskType::Mysql | TaskType::Postgresql => "sql",
            TaskType::Sqlite => "sqlite",
        }
    }
}

/// How the archive is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Compression {
    None,
    /// zstd at `level` (1–19; 3 is zstd's own default and a good trade-off).
    Zstd {
        level: i32,
    },
}

/// Which backups to keep. Every rule that is non-zero keeps what it selects; a backup is deleted
/// only when no rule keeps it. All zero keeps everything.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct Retention {
    /// The newest N backups.
    pub keep_last: u32,
    /// Backups younger than N days.
    pub keep_days: u32,
    /// The newest backup of each of the last N days (weeks, months, years) that have one.
    pub keep_daily: u32,
    pub keep_weekly: u32,
    pub keep_monthly: u32,
    pub keep_yearly: u32,
}

impl Retention {
    pub fn keeps_everything(&self) -> bool {
        *self == Retention::default()
    }
}

/// The files of a file task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FileSource {
    pub sources: Vec<String>,
    pub excludes: Vec<String>,
}

/// The database file of an SQLite task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SqliteSource {
    pub path: String,
}

/// What a task reads, by type. Holds no secret: a database password is sealed on its own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum SourceSpec {
    File(FileSource),
    Mysql(DbSource),
    Postgresql(DbSource),
    Sqlite(SqliteSource),
}

impl SourceSpec {
    pub fn kind(&self) -> TaskType {
        match self {
            SourceSpec::File(_) => TaskType::File,
            SourceSpec::Mysql(_) => TaskType::Mysql,
            SourceSpec::Postgresql(_) => TaskType::Postgresql,
            SourceSpec::Sqlite(_) => TaskType::Sqlite,
        }
    }

    /// The database server source of a `mysql` or `postgresql` task, with its engine.
    pub fn database(&self) -> Option<(DbEngine, &DbSource)> {
        match self {
            SourceSpec::Mysql(db) => Some((DbEngine::Mysql, db)),
            SourceSpec::Postgresql(db) => Some((DbEngine::Postgresql, db)),
            SourceSpec::File(_) | SourceSpec::Sqlite(_) => None,
        }
    }

    /// Where a database task's password goes: its server (`host`, `port`).
    pub fn server(&self) -> Option<(&str, u16)> {
        self.database().map(|(_, db)| (db.host.as_str(), db.port))
    }
}

/// A stored database password is sent only to the server it was entered for: an update that keeps
/// it (sends no new one) must not move the task to another server.
pub fn check_password_bound(new: &SourceSpec, old: &SourceSpec) -> Result<(), FieldError> {
    match (new.server(), old.server()) {
        (Some(to), Some(from)) if to != from => Err(FieldError::new(
            "dbPassword",
            "is kept only for the server it was entered for; dbHost or dbPort changed, so send the password again",
        )),
        _ => Ok(()),
    }
}

/// The part of a task the agent needs to run it; stored as JSON on the task row (and, without
/// its retention, on each record: what the run read, so a restore never depends on how the task
/// was changed since).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskSpec {
    #[serde(flatten)]
    pub source: SourceSpec,
    /// Tasks stored before formats existed are archive tasks.
    #[serde(default)]
    pub format: crate::status::BackupFormat,
    pub compression: Compression,
    pub retention: Retention,
}

/// What an update does with a task's stored database password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PasswordChange {
    /// Nothing sent, empty or the mask: keep the stored one (none on create).
    Keep,
    Set(SecretString),
}

/// What an API answer shows instead of a secret that is set.
pub const MASK: &str = "********";

/// A task request that passed every check that needs no database.
#[derive(Debug, Clone)]
pub struct CheckedTask {
    pub name: String,
    pub kind: TaskType,
    pub description: String,
    pub enabled: bool,
    pub node_id: i64,
    pub target_ids: Vec<i64>,
    /// The expression and zone as sent (trimmed), when the task has a schedule.
    pub schedule: Option<(String, String, Schedule)>,
    pub spec: TaskSpec,
    pub password: PasswordChange,
    pub tags: Vec<String>,
}

fn check_name(raw: &str) -> Result<String, FieldError> {
    crate::validate::name(raw, 100)
}

/// Absolute, normalised (no trailing slash, no `.`/`..` segments), unique, and none inside another
/// (nested sources would store the same files twice).
fn check_sources(raw: &[String]) -> Result<Vec<String>, FieldError> {
    if raw.is_empty() {
        return Err(FieldError::new(
            "sourcePaths",
            "at least one path is required",
        ));
    }
    if raw.len() > MAX_SOURCES {
        return Err(FieldError::new(
            "sourcePaths",
            format!("at most {MAX_SOURCES} paths"),
        ));
    }
    let mut out: Vec<String> = Vec::with_capacity(raw.len());
    for path in raw {
        let path = absolute_path(path.trim())
            .map_err(|e| FieldError::new("sourcePaths", format!("{path:?}: {}", e.reason)))?;
        if path.split('/').any(|s| s == "." || s == "..") {
            return Err(FieldError::new(
                "sourcePaths",
                format!("{path:?}: must not contain . or .. segments"),
            ));
        }
        let trimmed = match path.trim_end_matches('/') {
            "" => "/".to_owned(),
            p => p.to_owned(),
        };
        out.push(trimmed);
    }
    for (i, a) in out.iter().enumerate() {
        for b in &out[i + 1..] {
            let inside = |outer: &str, inner: &str| {
                outer == inner
                    || outer == "/"
                    || inner
                        .strip_prefix(outer)
                        .is_some_and(|r| r.starts_with('/'))
            };
            if inside(a, b) || inside(b, a) {
                return Err(FieldError::new(
                    "sourcePaths",
                    format!("{a:?} and {b:?} overlap; list a directory once"),
                ));
            }
        }
    }
    Ok(out)
}

/// Glob patterns (`*.log`, `**/node_modules`, `/srv/app/cache/*`), matched by the agent against
/// paths inside the sources.
fn check_excludes(raw: &[String]) -> Result<Vec<String>, FieldError> {
    if raw.len() > MAX_EXCLUDES {
        return Err(FieldError::new(
            "excludePatterns",
            format!("at most {MAX_EXCLUDES} patterns"),
        ));
    }
    let mut out = Vec::with_capacity(raw.len());
    for pattern in raw {
        let pattern = pattern.trim();
        if pattern.is_empty() || pattern.len() > 1024 || pattern.contains('\0') {
            return Err(FieldError::new(
                "excludePatterns",
                "each pattern must be 1 to 1024 bytes",
            ));
        }
        glob::Pattern::new(pattern)
            .map_err(|e| FieldError::new("excludePatterns", format!("{pattern:?}: {}", e.msg)))?;
        out.push(pattern.to_owned());
    }
    Ok(out)
}

fn check_targets(raw: &[i64]) -> Result<Vec<i64>, FieldError> {
    if raw.is_empty() {
        return Err(FieldError::new(
            "storageTargetIds",
            "at least one storage target is required",
        ));
    }
    if raw.len() > MAX_TARGETS {
        return Err(FieldError::new(
            "storageTargetIds",
            format!("at most {MAX_TARGETS} targets"),
        ));
    }
    let mut out: Vec<i64> = Vec::with_capacity(raw.len());
    for &id in raw {
        if id <= 0 {
            return Err(FieldError::new(
                "storageTargetIds",
                "ids are positive integers",
            ));
        }
        if out.contains(&id) {
            return Err(FieldError::new(
                "storageTargetIds",
                format!("target {id} is listed twice"),
            ));
        }
        out.push(id);
    }
    Ok(out)
}

fn check_tags(raw: &[String]) -> Result<Vec<String>, FieldError> {
    if raw.len() > MAX_TAGS {
        return Err(FieldError::new("tags", format!("at most {MAX_TAGS} tags")));
    }
    let mut out: Vec<String> = Vec::new();
    for tag in raw {
        let tag = tag.trim();
        if !(1..=32).contains(&tag.chars().count()) || tag.chars().any(char::is_control) {
            return Err(FieldError::new(
                "tags",
                "each tag must be 1 to 32 characters",
            ));
        }
        if !out.iter().any(|t| t.eq_ignore_ascii_case(tag)) {
            out.push(tag.to_owned());
        }
    }
    Ok(out)
}

fn check_format(raw: &str) -> Result<crate::status::BackupFormat, FieldError> {
    use crate::status::BackupFormat;
    match raw.trim() {
        "" => Ok(BackupFormat::Archive),
        word => match BackupFormat::parse(word) {
            Some(format) => Ok(format),
            None => Err(FieldError::new(
                "format",
                format!("{word:?} is not a format; use archive or repository"),
            )),
        },
    }
}

fn check_compression(kind: &str, level: Option<i32>) -> Result<Compression, FieldError> {
    match kind {
        "" | "zstd" => {
            let level = level.unwrap_or(3);
            if !(1..=19).contains(&level) {
                return Err(FieldError::new("compressionLevel", "must be 1 to 19"));
            }
            Ok(Compression::Zstd { level })
        }
        "none" => Ok(Compression::None),
        other => Err(FieldError::new(
            "compression",
            format!("{other:?} is not supported; use zstd or none"),
        )),
    }
}

/// `POST /api/backup/tasks` and `PUT /api/backup/tasks/:id`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BackupTaskRequest {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub description: String,
    #[serde(default = "yes")]
    pub enabled: bool,
    /// The node whose agent runs the task (for `file` tasks: whose files are backed up).
    #[serde(default)]
    pub node_id: i64,
    #[serde(default)]
    pub source_paths: Vec<String>,
    #[serde(default)]
    pub exclude_patterns: Vec<String>,
    #[serde(default)]
    pub storage_target_ids: Vec<i64>,
    /// Five cron fields or `@daily`-style; empty means the task runs only when asked to.
    #[serde(default)]
    pub cron_expr: String,
    /// IANA time zone the schedule is read in (default `UTC`).
    #[serde(default)]
    pub time_zone: String,
    /// `archive` (default) or `repository`.
    #[serde(default)]
    pub format: String,
    /// `zstd` (default) or `none`.
    #[serde(default)]
    pub compression: String,
    #[serde(default)]
    pub compression_level: Option<i32>,
    #[serde(default)]
    pub retention: Retention,
    #[serde(default)]
    pub tags: Vec<String>,
    /// `mysql` and `postgresql`: the server (default `127.0.0.1` and the engine's port), the user
    /// and password (sealed; `********` or nothing keeps the stored one), the databases (none
    /// means all), extra dump options (allow-listed) and, for PostgreSQL, the globals.
    #[serde(default)]
    pub db_host: String,
    #[serde(default)]
    pub db_port: Option<u16>,
    #[serde(default)]
    pub db_user: String,
    #[serde(default)]
    pub db_password: Option<SecretString>,
    #[serde(default)]
    pub db_names: Vec<String>,
    #[serde(default)]
    pub db_options: Vec<String>,
    #[serde(default)]
    pub db_include_globals: bool,
    /// `sqlite`: the database file.
    #[serde(default)]
    pub db_path: String,
}

impl BackupTaskRequest {
    pub fn check(&self) -> Result<CheckedTask, FieldError> {
        let name = check_name(&self.name)?;
        let kind = TaskType::parse(&self.kind).ok_or_else(|| {
            FieldError::new(
                "type",
                format!(
                    "{:?} is not a task type; use file, mysql, postgresql or sqlite",
                    self.kind
                ),
            )
        })?;
        if self.description.chars().count() > 500 {
            return Err(FieldError::new(
                "description",
                "must be at most 500 characters",
            ));
        }
        if self.node_id <= 0 {
            return Err(FieldError::new(
                "nodeId",
                "is required: the node whose agent runs the task",
            ));
        }
        let expr = self.cron_expr.trim();
        let zone = match self.time_zone.trim() {
            "" => "UTC",
            zone => zone,
        };
        let schedule = if expr.is_empty() {
            None
        } else {
            Some((
                expr.to_owned(),
                zone.to_owned(),
                Schedule::parse(expr, zone)?,
            ))
        };
        let (source, password) = self.check_source(kind)?;
        Ok(CheckedTask {
            name,
            kind,
            description: self.description.trim().to_owned(),
            enabled: self.enabled,
            node_id: self.node_id,
            target_ids: check_targets(&self.storage_target_ids)?,
            schedule,
            spec: TaskSpec {
                source,
                format: check_format(&self.format)?,
                compression: check_compression(&self.compression, self.compression_level)?,
                retention: self.retention,
            },
            password,
            tags: check_tags(&self.tags)?,
        })
    }

    /// The fields of the task's type; fields of other types must be left out, so a mistyped
    /// request is refused instead of half-used.
    fn check_source(&self, kind: TaskType) -> Result<(SourceSpec, PasswordChange), FieldError> {
        let stray = |field: &'static str, set: bool| {
            if set {
                Err(FieldError::new(
                    field,
                    format!("is not used by {} tasks; leave it out", kind.as_str()),
                ))
            } else {
                Ok(())
            }
        };
        let file_fields = [
            ("sourcePaths", !self.source_paths.is_empty()),
            ("excludePatterns", !self.exclude_patterns.is_empty()),
        ];
        let server_fields = [
            ("dbHost", !self.db_host.trim().is_empty()),
            ("dbPort", self.db_port.is_some()),
            ("dbUser", !self.db_user.trim().is_empty()),
            ("dbPassword", self.password_sent()),
            ("dbNames", !self.db_names.is_empty()),
            ("dbOptions", !self.db_options.is_empty()),
            ("dbIncludeGlobals", self.db_include_globals),
        ];
        let path_field = [("dbPath", !self.db_path.trim().is_empty())];
        let unused: Vec<(&'static str, bool)> = match kind {
            TaskType::File => [&server_fields[..], &path_field].concat(),
            TaskType::Mysql | TaskType::Postgresql => [&file_fields[..], &path_field].concat(),
            TaskType::Sqlite => [&file_fields[..], &server_fields].concat(),
        };
        for (field, set) in unused {
            stray(field, set)?;
        }
        match kind {
            TaskType::File => Ok((
                SourceSpec::File(FileSource {
                    sources: check_sources(&self.source_paths)?,
                    excludes: check_excludes(&self.exclude_patterns)?,
                }),
                PasswordChange::Keep,
            )),
            TaskType::Sqlite => {
                let path = absolute_path(self.db_path.trim()).map_err(|e| {
                    FieldError::new("dbPath", format!("the database file {}", e.reason))
                })?;
                if path.ends_with('/') || path.split('/').any(|s| s == "." || s == "..") {
                    return Err(FieldError::new(
                        "dbPath",
                        "must name the database file, without . or .. segments",
                    ));
                }
                Ok((
                    SourceSpec::Sqlite(SqliteSource { path }),
                    PasswordChange::Keep,
                ))
            }
            TaskType::Mysql => self
                .check_server(DbEngine::Mysql)
                .map(|(db, pw)| (SourceSpec::Mysql(db), pw)),
            TaskType::Postgresql => self
                .check_server(DbEngine::Postgresql)
                .map(|(db, pw)| (SourceSpec::Postgresql(db), pw)),
        }
    }

    /// The connection, databases and options of a `mysql` or `postgresql` task.
    fn check_server(&self, engine: DbEngine) -> Result<(DbSource, PasswordChange), FieldError> {
        let password = match &self.db_password {
            Some(p) if !p.expose().is_empty() && p.expose() != MASK => {
                PasswordChange::Set(p.clone())
            }
            _ => PasswordChange::Keep,
        };
        let probe = match &password {
            PasswordChange::Set(p) => p.clone(),
            PasswordChange::Keep => SecretString::new(""),
        };
        let conn = check_connection(engine, &self.db_host, self.db_port, &self.db_user, &probe)
            .map_err(|e| {
                let field = match e.field {
                    "host" => "dbHost",
                    "port" => "dbPort",
                    "user" => "dbUser",
                    _ => "dbPassword",
                };
                FieldError::new(field, e.reason)
            })?;
        if self.db_names.len() > 64 {
            return Err(FieldError::new("dbNames", "at most 64 databases"));
        }
        let mut databases: Vec<String> = Vec::with_capacity(self.db_names.len());
        for raw in &self.db_names {
            let name =
                check_database_name(engine, raw).map_err(|why| FieldError::new("dbNames", why))?;
            if databases.contains(&name) {
                return Err(FieldError::new(
                    "dbNames",
                    format!("{name:?} is listed twice"),
                ));
            }
            databases.push(name);
        }
        let options = check_dump_options(engine, &self.db_options)
            .map_err(|why| FieldError::new("dbOptions", why))?;
        if self.db_include_globals && engine != DbEngine::Postgresql {
            return Err(FieldError::new(
                "dbIncludeGlobals",
                "is for postgresql tasks (the roles and tablespaces of the cluster)",
            ));
        }
        Ok((
            DbSource {
                host: conn.host,
                port: conn.port,
                user: conn.user,
                databases,
                options,
                include_globals: self.db_include_globals,
            },
            password,
        ))
    }

    fn password_sent(&self) -> bool {
        self.db_password
            .as_ref()
            .is_some_and(|p| !p.expose().is_empty())
    }
}

fn yes() -> bool {
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn request(patch: serde_json::Value) -> BackupTaskRequest {
        let mut base = json!({
            "name": "web files", "type": "file", "nodeId": 1, "sourcePaths": ["/srv/www", "/etc/nginx/"],
            "excludePatterns": ["*.log", "**/cache/**"], "storageTargetIds": [2, 3],
            "cronExpr": "30 2 * * *", "timeZone": "Europe/Berlin", "tags": ["web", "Web", "prod"]
        });
        if let (Some(base), Some(patch)) = (base.as_object_mut(), patch.as_object()) {
            for (k, v) in patch {
                base.insert(k.clone(), v.clone());
            }
        }
        serde_json::from_value(base).expect("request shape")
    }

    #[test]
    fn a_good_request_is_normalised() {
        let t = request(json!({})).check().expect("valid");
        assert_eq!(
            t.spec.source,
            SourceSpec::File(FileSource {
                sources: vec!["/srv/www".into(), "/etc/nginx".into()],
                excludes: vec!["*.log".into(), "**/cache/**".into()],
            })
        );
        assert_eq!(t.spec.compression, Compression::Zstd { level: 3 });
        assert_eq!(t.tags, ["web", "prod"]);
        assert!(t.enabled);
        let (expr, zone, _) = t.schedule.expect("scheduled");
        assert_eq!(
            (expr.as_str(), zone.as_str()),
            ("30 2 * * *", "Europe/Berlin")
        );
        let manual = request(json!({"cronExpr": "  "})).check().expect("valid");
        assert!(manual.schedule.is_none());
    }

    #[test]
    fn each_problem_names_its_field() {
        for (patch, field) in [
            (json!({"name": " "}), "name"),
            (json!({"type": "oracle"}), "type"),
            (json!({"type": "mysql"}), "sourcePaths"),
            (json!({"nodeId": 0}), "nodeId"),
            (json!({"sourcePaths": []}), "sourcePaths"),
            (json!({"sourcePaths": ["relative/path"]}), "sourcePaths"),
            (json!({"sourcePaths": ["/srv/../etc"]}), "sourcePaths"),
            (json!({"sourcePaths": ["/srv", "/srv/www"]}), "sourcePaths"),
            (
                json!({"sourcePaths": ["/srv/www", "/srv/www/"]}),
                "sourcePaths",
            ),
            (json!({"sourcePaths": ["/", "/etc"]}), "sourcePaths"),
            (json!({"excludePatterns": ["[unclosed"]}), "excludePatterns"),
            (json!({"storageTargetIds": []}), "storageTargetIds"),
            (json!({"storageTargetIds": [2, 2]}), "storageTargetIds"),
            (json!({"cronExpr": "every day"}), "cronExpr"),
            (json!({"timeZone": "Berlin"}), "timeZone"),
            (json!({"compression": "gzip"}), "compression"),
            (json!({"compressionLevel": 22}), "compressionLevel"),
            (json!({"tags": [""]}), "tags"),
        ] {
            let err = request(patch.clone())
                .check()
                .expect_err(&patch.to_string());
            assert_eq!(err.field, field, "{patch}: {err}");
        }
    }

    #[test]
    fn sibling_paths_with_a_common_prefix_do_not_overlap() {
        let t = request(json!({"sourcePaths": ["/srv/www", "/srv/www2"]}))
            .check()
            .expect("valid");
        assert!(matches!(&t.spec.source, SourceSpec::File(f) if f.sources.len() == 2));
    }

    fn database(kind: &str, patch: serde_json::Value) -> BackupTaskRequest {
        let mut base = json!({
            "name": "shop db", "type": kind, "nodeId": 1, "storageTargetIds": [2],
            "dbUser": "backup", "dbPassword": "s3cret", "dbNames": ["shop", "blog"]
        });
        if let (Some(base), Some(patch)) = (base.as_object_mut(), patch.as_object()) {
            for (k, v) in patch {
                base.insert(k.clone(), v.clone());
            }
        }
        serde_json::from_value(base).expect("request shape")
    }

    #[test]
    fn database_tasks_take_a_connection_and_keep_the_password_apart() {
        let t = database(
            "mysql",
            json!({"dbOptions": ["--ignore-table=shop.sessions"]}),
        )
        .check()
        .expect("valid");
        let SourceSpec::Mysql(db) = &t.spec.source else {
            panic!("a mysql source: {:?}", t.spec.source);
        };
        assert_eq!(
            (db.host.as_str(), db.port, db.user.as_str()),
            ("127.0.0.1", 3306, "backup")
        );
        assert_eq!(db.databases, ["shop", "blog"]);
        assert_eq!(t.password, PasswordChange::Set(SecretString::new("s3cret")));
        let stored = serde_json::to_string(&t.spec).expect("json");
        assert!(!stored.contains("s3cret"), "{stored}");
        assert!(stored.contains(r#""type":"mysql""#), "{stored}");
        let back: TaskSpec = serde_json::from_str(&stored).expect("round trip");
        assert_eq!(back, t.spec);

        let pg = database(
            "pgsql",
            json!({"dbPassword": MASK, "dbNames": [], "dbPort": 6432, "dbIncludeGlobals": true}),
        )
        .check()
        .expect("valid");
        assert_eq!(pg.kind, TaskType::Postgresql);
        assert_eq!(pg.password, PasswordChange::Keep);
        assert!(
            matches!(&pg.spec.source, SourceSpec::Postgresql(d) if d.port == 6432 && d.databases.is_empty() && d.include_globals)
        );

        let lite = request(json!({"type": "sqlite", "sourcePaths": [], "excludePatterns": [], "dbPath": "/var/lib/app/app.db"}))
            .check()
            .expect("valid");
        assert_eq!(
            lite.spec.source,
            SourceSpec::Sqlite(SqliteSource {
                path: "/var/lib/app/app.db".into()
            })
        );
    }

    #[test]
    fn stored_file_specs_read_back() {
        // What the first file tasks stored, with the type a migration added.
        let stored = r#"{"type":"file","sources":["/srv"],"excludes":[],"compression":{"kind":"zstd","level":3},"retention":{"keepLast":2,"keepDays":0,"keepDaily":0,"keepWeekly":0,"keepMonthly":0,"keepYearly":0}}"#;
        let spec: TaskSpec = serde_json::from_str(stored).expect("parse");
        assert_eq!(spec.source.kind(), TaskType::File);
        assert_eq!(spec.retention.keep_last, 2);
    }

    #[test]
    fn database_problems_name_their_field() {
        for (kind, patch, field) in [
            ("mysql", json!({"dbUser": ""}), "dbUser"),
            ("mysql", json!({"dbHost": "-h evil"}), "dbHost"),
            ("mysql", json!({"dbPort": 0}), "dbPort"),
            ("mysql", json!({"dbPassword": "a\nb"}), "dbPassword"),
            ("mysql", json!({"dbNames": ["-A"]}), "dbNames"),
            ("mysql", json!({"dbNames": ["a", "a"]}), "dbNames"),
            (
                "mysql",
                json!({"dbOptions": ["--result-file=/etc/passwd"]}),
                "dbOptions",
            ),
            (
                "mysql",
                json!({"dbIncludeGlobals": true}),
                "dbIncludeGlobals",
            ),
            (
                "postgresql",
                json!({"sourcePaths": ["/srv"]}),
                "sourcePaths",
            ),
            ("postgresql", json!({"dbPath": "/x.db"}), "dbPath"),
            (
                "sqlite",
                json!({"dbPath": "relative.db", "dbUser": "", "dbPassword": "", "dbNames": []}),
                "dbPath",
            ),
            ("sqlite", json!({"dbPath": "/x.db"}), "dbUser"),
            ("file", json!({"sourcePaths": ["/srv"]}), "dbUser"),
        ] {
            let err = database(kind, patch.clone())
                .check()
                .expect_err(&patch.to_string());
            assert_eq!(err.field, field, "{kind} {patch}: {err}");
        }
    }

    #[test]
    fn a_kept_database_password_stays_with_its_server() {
        let db = |host: &str, port: u16| {
            SourceSpec::Mysql(DbSource {
                host: host.to_owned(),
                port,
                user: "root".to_owned(),
                databases: vec![],
                options: vec![],
                include_globals: false,
            })
        };
        assert!(check_password_bound(&db("db1", 3306), &db("db1", 3306)).is_ok());
        for moved in [db("attacker.example", 3306), db("db1", 3307)] {
            let err = check_password_bound(&moved, &db("db1", 3306)).expect_err("moved");
            assert_eq!(err.field, "dbPassword");
        }
    }
}
