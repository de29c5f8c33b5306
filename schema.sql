-- Users, sessions, login throttling, the audit log and small system state.
-- Times are RFC 3339 UTC strings with milliseconds (shared::time::format), so they sort as text.

CREATE TABLE users (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    username            TEXT    NOT NULL UNIQUE COLLATE NOCASE,
    display_name        TEXT    NOT NULL,
    role                TEXT    NOT NULL DEFAULT 'admin' CHECK (role IN ('admin', 'operator', 'viewer')),
    password_hash       TEXT    NOT NULL,
    password_changed_at TEXT    NOT NULL,
    created_at          TEXT    NOT NULL,
    updated_at          TEXT    NOT NULL
);

-- One row per issued token. The JWT carries the id; a token is honoured only while its row is
-- neither revoked nor expired, so logout and password changes take effect at once.
CREATE TABLE sessions (
    id           TEXT    PRIMARY KEY,
    user_id      INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at   TEXT    NOT NULL,
    expires_at   TEXT    NOT NULL,
    revoked_at   TEXT,
    client_ip    TEXT    NOT NULL,
    user_agent   TEXT    NOT NULL
);
CREATE INDEX sessions_user ON sessions (user_id);
CREATE INDEX sessions_expires ON sessions (expires_at);
-- Stream tickets already used: a ticket opens one stream or download once. Rows go when the
-- ticket would have expired anyway.
CREATE TABLE spent_tickets (
    jti        TEXT PRIMARY KEY,
    expires_at TEXT NOT NULL
);

-- Failed sign-in counters, keyed 'account:<username>' or 'ip:<address>'.
CREATE TABLE login_throttle (
    key          TEXT    PRIMARY KEY,
    failures     INTEGER NOT NULL,
    window_start TEXT    NOT NULL,
    locked_until TEXT
);

-- Refusals that are counted, not each written to the audit log (sign-ins refused by the rate
-- limit, setup after setup): per client address and kind, the audit row of the current window and
-- how many refusals it stands for.
CREATE TABLE audit_summaries (
    key      TEXT    PRIMARY KEY,
    audit_id INTEGER NOT NULL,
    refused  INTEGER NOT NULL,
    until    TEXT    NOT NULL
);
CREATE TABLE audit_logs (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at    TEXT    NOT NULL,
    actor_user_id INTEGER,
    actor         TEXT    NOT NULL,
    action        TEXT    NOT NULL,
    resource_type TEXT    NOT NULL,
    resource_id   TEXT,
    result        TEXT    NOT NULL CHECK (result IN ('success', 'failure')),
    detail        TEXT    NOT NULL DEFAULT '',
    client_ip     TEXT    NOT NULL,
    user_agent    TEXT    NOT NULL
);
CREATE INDEX audit_logs_created ON audit_logs (created_at);
CREATE INDEX audit_logs_action ON audit_logs (action, created_at);

CREATE TABLE system_state (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
-- Nodes (machines with an agent) and the leased command queue between the Worker and agents.

-- token_hash is the hex SHA-256 of the node's token; the token itself is shown once and never stored.
CREATE TABLE nodes (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    name          TEXT    NOT NULL UNIQUE COLLATE NOCASE,
    token_hash    TEXT    NOT NULL UNIQUE,
    status        TEXT    NOT NULL DEFAULT 'offline' CHECK (status IN ('online', 'offline')),
    hostname      TEXT    NOT NULL DEFAULT '',
    ip_address    TEXT    NOT NULL DEFAULT '',
    os            TEXT    NOT NULL DEFAULT '',
    arch          TEXT    NOT NULL DEFAULT '',
    agent_version TEXT    NOT NULL DEFAULT '',
    capabilities  TEXT    NOT NULL DEFAULT '{}',
    last_seen_at  TEXT,
    created_at    TEXT    NOT NULL,
    updated_at    TEXT    NOT NULL
);
-- How many heartbeats and polls each node made in its current window: a node that calls more
-- often than an agent ever does is refused (429) before any other work is done for it.
CREATE TABLE agent_pace (
    node_id      INTEGER NOT NULL,
    kind         TEXT    NOT NULL,
    window_start TEXT    NOT NULL,
    calls        INTEGER NOT NULL,
    PRIMARY KEY (node_id, kind)
);

-- pending → claimed → succeeded | failed | expired (shared::commands). A claim is a lease that
-- heartbeats renew; the cron tick expires lapsed leases, so nothing stays claimed forever.
-- spec_sealed is the command's spec sealed like every secret ('agent_commands/<uid>' as associated
-- data): specs carry storage credentials on their way to an agent.
CREATE TABLE agent_commands (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    uid              TEXT    NOT NULL UNIQUE,
    node_id          INTEGER NOT NULL REFERENCES nodes (id) ON DELETE CASCADE,
    kind             TEXT    NOT NULL,
    spec_sealed      TEXT    NOT NULL,
    status           TEXT    NOT NULL DEFAULT 'pending'
                     CHECK (status IN ('pending', 'claimed', 'succeeded', 'failed', 'expired')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    created_at       TEXT    NOT NULL,
    claimed_at       TEXT,
    lease_expires_at TEXT,
    finished_at      TEXT,
    result           TEXT,
    error_code       TEXT,
    error_message    TEXT
);
CREATE INDEX agent_commands_queue ON agent_commands (node_id, status, id);
CREATE INDEX agent_commands_lease ON agent_commands (status, lease_expires_at);
-- Storage targets. The whole config is sealed (AES-256-GCM, key from the SEAL_KEY secret, fresh
-- nonce, 'storage_targets/<uid>' as associated data), so a copied ciphertext cannot be moved to
-- another row and nothing secret is stored in the clear.
CREATE TABLE storage_targets (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    uid               TEXT    NOT NULL UNIQUE,
    name              TEXT    NOT NULL UNIQUE COLLATE NOCASE,
    type              TEXT    NOT NULL,
    description       TEXT    NOT NULL DEFAULT '',
    enabled           INTEGER NOT NULL DEFAULT 1,
    starred           INTEGER NOT NULL DEFAULT 0,
    config_sealed     TEXT    NOT NULL,
    config_version    INTEGER NOT NULL DEFAULT 1,
    quota_bytes       INTEGER NOT NULL DEFAULT 0,
    last_tested_at    TEXT,
    last_test_status  TEXT    NOT NULL DEFAULT 'unknown'
                      CHECK (last_test_status IN ('unknown', 'success', 'failed')),
    last_test_message TEXT    NOT NULL DEFAULT '',
    created_at        TEXT    NOT NULL,
    updated_at        TEXT    NOT NULL
);
-- Each storage target's last measured usage, so a viewer reads it without starting work on an
-- agent (only an operator's request measures anew).
CREATE TABLE storage_usage (
    target_id   INTEGER PRIMARY KEY REFERENCES storage_targets (id) ON DELETE CASCADE,
    node_id     INTEGER NOT NULL,
    usage       TEXT    NOT NULL,
    measured_at TEXT    NOT NULL
);
-- What an rclone version reports as its backends (`rclone config providers`, trimmed), fetched from
-- an agent once per version: the list is compiled into rclone, so it changes only with the version.
CREATE TABLE rclone_backends (
    version    TEXT PRIMARY KEY,
    backends   TEXT NOT NULL,
    fetched_at TEXT NOT NULL
);

-- Google Drive authorizations in progress. Only the SHA-256 of the state is kept (the state is a
-- bearer value until it is used); the draft (client id and secret, target fields) is sealed with
-- 'oauth_sessions/<state hash>' as associated data. A session is used at most once, expires after
-- ten minutes, and the tick deletes expired ones.
CREATE TABLE oauth_sessions (
    state_hash    TEXT PRIMARY KEY,
    provider      TEXT NOT NULL,
    draft_sealed  TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    expires_at    TEXT NOT NULL,
    used_at       TEXT
);
CREATE INDEX oauth_sessions_expiry ON oauth_sessions (expires_at);
-- Backup tasks. `spec` is the JSON the agent runs (sources, excludes, compression, retention); it
-- holds no secret for file tasks. `revision` changes with every write, so the statements of one
-- write (the task row, then its targets) can check in one D1 batch that they belong together.
-- `schedule_cursor` is the last fire time the scheduler has dealt with.
CREATE TABLE backup_tasks (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    revision        TEXT    NOT NULL UNIQUE,
    name            TEXT    NOT NULL UNIQUE COLLATE NOCASE,
    type            TEXT    NOT NULL,
    description     TEXT    NOT NULL DEFAULT '',
    enabled         INTEGER NOT NULL DEFAULT 1,
    node_id         INTEGER NOT NULL REFERENCES nodes (id),
    spec            TEXT    NOT NULL,
    cron_expr       TEXT    NOT NULL DEFAULT '',
    time_zone       TEXT    NOT NULL DEFAULT 'UTC',
    schedule_cursor TEXT,
    tags            TEXT    NOT NULL DEFAULT '[]',
    last_run_at     TEXT,
    last_status     TEXT,
    created_at      TEXT    NOT NULL,
    updated_at      TEXT    NOT NULL
);
CREATE INDEX backup_tasks_node ON backup_tasks (node_id);

-- The targets a task writes to, in the order given.
CREATE TABLE backup_task_targets (
    task_id   INTEGER NOT NULL REFERENCES backup_tasks (id) ON DELETE CASCADE,
    target_id INTEGER NOT NULL REFERENCES storage_targets (id),
    position  INTEGER NOT NULL,
    PRIMARY KEY (task_id, target_id)
);
CREATE INDEX backup_task_targets_target ON backup_task_targets (target_id);
-- Backup records: one row per run of a task, kept when the task is deleted (task_id becomes NULL,
-- task_name stays). A scheduled run is unique per task and fire time, so repeated ticks create it
-- once. `command_id` links the run to the agent command doing it; the tick fails a running record
-- whose command expired or failed.
CREATE TABLE backup_records (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    task_id      INTEGER REFERENCES backup_tasks (id) ON DELETE SET NULL,
    task_name    TEXT    NOT NULL,
    node_id      INTEGER NOT NULL,
    trigger      TEXT    NOT NULL CHECK (trigger IN ('manual', 'schedule')),
    fire_at      TEXT,
    status       TEXT    NOT NULL DEFAULT 'running'
                 CHECK (status IN ('running', 'success', 'partial', 'failed')),
    command_id   INTEGER,
    bytes        INTEGER NOT NULL DEFAULT 0,
    files        INTEGER NOT NULL DEFAULT 0,
    source_bytes INTEGER NOT NULL DEFAULT 0,
    checksum     TEXT    NOT NULL DEFAULT '',
    error        TEXT    NOT NULL DEFAULT '',
    started_at   TEXT    NOT NULL,
    finished_at  TEXT,
    UNIQUE (task_id, fire_at)
);
CREATE INDEX backup_records_task ON backup_records (task_id, started_at);
CREATE INDEX backup_records_status ON backup_records (status);

-- Where each record's artifact went, per target.
CREATE TABLE backup_record_targets (
    record_id   INTEGER NOT NULL REFERENCES backup_records (id) ON DELETE CASCADE,
    target_id   INTEGER NOT NULL,
    target_name TEXT    NOT NULL,
    path        TEXT    NOT NULL,
    status      TEXT    NOT NULL DEFAULT 'running'
                CHECK (status IN ('running', 'success', 'failed')),
    bytes       INTEGER NOT NULL DEFAULT 0,
    error       TEXT    NOT NULL DEFAULT '',
    PRIMARY KEY (record_id, target_id)
);
-- What the scheduler did with a task's last fire time that it could not run (for example because
-- the previous run was still going), and how many fire times a scheduled run stands for.
ALTER TABLE backup_tasks ADD COLUMN last_skip TEXT NOT NULL DEFAULT '';
ALTER TABLE backup_records ADD COLUMN coalesced INTEGER NOT NULL DEFAULT 0;
-- Live log lines of backup runs, restores and checks. The agent numbers each record's lines from
-- 1, so a batch sent twice is stored once and a log stream resumes after the last line it
-- delivered. (Its name is quoted as SQLite stores it after migration 0017 renamed it.)
CREATE TABLE "run_logs" (
    kind      TEXT    NOT NULL CHECK (kind IN ('backup', 'restore', 'verify')),
    record_id INTEGER NOT NULL,
    seq       INTEGER NOT NULL,
    at        TEXT    NOT NULL,
    level     TEXT    NOT NULL CHECK (level IN ('info', 'warn', 'error')),
    message   TEXT    NOT NULL,
    PRIMARY KEY (kind, record_id, seq)
) WITHOUT ROWID;

-- The latest progress of a running record (JSON), and what retention did with a finished one:
-- `removal` names the rule that dropped it, `removal_command` is the agent command deleting its
-- objects, `removed_at` is when they were gone.
ALTER TABLE backup_records ADD COLUMN progress TEXT NOT NULL DEFAULT '';
ALTER TABLE backup_records ADD COLUMN removal TEXT NOT NULL DEFAULT '';
ALTER TABLE backup_records ADD COLUMN removal_command INTEGER;
ALTER TABLE backup_records ADD COLUMN removed_at TEXT;
CREATE INDEX backup_records_started ON backup_records (started_at);

-- Restores: one row per restore of a backup record. Kept when the backup record goes, so the
-- history of what was restored where stays readable.
CREATE TABLE restore_records (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    backup_record_id INTEGER NOT NULL,
    task_id          INTEGER,
    task_name        TEXT    NOT NULL,
    node_id          INTEGER NOT NULL,
    target_id        INTEGER NOT NULL,
    target_path      TEXT    NOT NULL DEFAULT '',
    status           TEXT    NOT NULL DEFAULT 'running'
                     CHECK (status IN ('running', 'success', 'failed')),
    command_id       INTEGER,
    files            INTEGER NOT NULL DEFAULT 0,
    bytes            INTEGER NOT NULL DEFAULT 0,
    progress         TEXT    NOT NULL DEFAULT '',
    error            TEXT    NOT NULL DEFAULT '',
    triggered_by     TEXT    NOT NULL,
    started_at       TEXT    NOT NULL,
    finished_at      TEXT
);
CREATE INDEX restore_records_backup ON restore_records (backup_record_id);
CREATE INDEX restore_records_command ON restore_records (command_id);
CREATE INDEX backup_records_command ON backup_records (command_id);
-- Downloads relayed by an agent (for targets the Worker cannot read itself, such as a node's own
-- disk): the agent posts the artifact in numbered chunks and the download request streams them
-- out in order, deleting each once sent. At most a few chunks wait at a time, so the table stays
-- small; the tick removes relays nobody finished.
CREATE TABLE relays (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    record_id  INTEGER NOT NULL,
    node_id    INTEGER NOT NULL,
    command_id INTEGER,
    status     TEXT    NOT NULL DEFAULT 'waiting'
               CHECK (status IN ('waiting', 'sending', 'done', 'failed')),
    chunks     INTEGER NOT NULL DEFAULT 0,
    error      TEXT    NOT NULL DEFAULT '',
    created_at TEXT    NOT NULL
);
CREATE INDEX relays_command ON relays (command_id);
-- When a relayed download last took a chunk: the tick purges only relays that nobody has read
-- from for an hour, never one that is still being downloaded.
CREATE TABLE relay_reads (
    relay_id INTEGER PRIMARY KEY REFERENCES relays (id) ON DELETE CASCADE,
    read_at  TEXT    NOT NULL
);

CREATE TABLE relay_chunks (
    relay_id INTEGER NOT NULL,
    seq      INTEGER NOT NULL,
    data     TEXT    NOT NULL,
    PRIMARY KEY (relay_id, seq)
) WITHOUT ROWID;
-- Database tasks (mysql, postgresql, sqlite). A task's database password is sealed on its own
-- (AES-256-GCM, 'backup_tasks/<uid>/dbPassword' as associated data; `uid` never changes, unlike
-- `revision`), so `spec` still holds no secret. File specs gain the type tag that every spec now
-- carries.
ALTER TABLE backup_tasks ADD COLUMN uid TEXT NOT NULL DEFAULT '';
UPDATE backup_tasks SET uid = revision WHERE uid = '';
CREATE UNIQUE INDEX backup_tasks_uid ON backup_tasks (uid);
ALTER TABLE backup_tasks ADD COLUMN password_sealed TEXT NOT NULL DEFAULT '';
UPDATE backup_tasks SET spec = json_set(spec, '$.type', 'file')
WHERE type = 'file' AND json_extract(spec, '$.type') IS NULL;

-- What a run read, kept on its record so that a restore never depends on how the task was
-- changed (or whether it still exists): the task's type, its source as JSON (no secret), and for
-- database dumps where each database lies in the uncompressed artifact.
ALTER TABLE backup_records ADD COLUMN kind TEXT NOT NULL DEFAULT 'file';
ALTER TABLE backup_records ADD COLUMN source TEXT NOT NULL DEFAULT '';
ALTER TABLE backup_records ADD COLUMN sections TEXT NOT NULL DEFAULT '[]';

-- Database restores: which databases of the backup went into which database (JSON).
ALTER TABLE restore_records ADD COLUMN target_databases TEXT NOT NULL DEFAULT '[]';
-- Settings, notification channels and their deliveries, and what the audit log needs to be read.

-- Allow-listed settings, one row per key that was ever set; the value is JSON. Keys that were never
-- set take their defaults from the code (shared::settings), so a new setting needs no migration.
CREATE TABLE settings (
    key        TEXT PRIMARY KEY,
    value      TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

-- Where notifications go. `config` is the whole channel config sealed (AES-256-GCM,
-- 'notification_channels/<uid>' as associated data), so URLs with tokens in them stay secret too.
-- `events` is a JSON array of event names; `failure_threshold` is "only after N consecutive
-- failures" for backup failures.
CREATE TABLE notification_channels (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    uid               TEXT    NOT NULL UNIQUE,
    name              TEXT    NOT NULL UNIQUE COLLATE NOCASE,
    type              TEXT    NOT NULL
                      CHECK (type IN ('webhook', 'email', 'telegram', 'slack', 'discord', 'ntfy')),
    enabled           INTEGER NOT NULL DEFAULT 1,
    events            TEXT    NOT NULL DEFAULT '[]',
    failure_threshold INTEGER NOT NULL DEFAULT 1,
    config_sealed     TEXT    NOT NULL,
    created_at        TEXT    NOT NULL,
    updated_at        TEXT    NOT NULL
);

-- One message for one channel. The message (no secret in it) is stored, so a retry sends what
-- the first attempt sent. `event_key` makes an event deliver once per channel however many times
-- it is noticed. A row is claimed ('sending', `claimed_until`) before it is sent, so the tick and
-- a request never send it twice; a lapsed claim returns it to 'pending'.
CREATE TABLE notification_deliveries (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    channel_id      INTEGER NOT NULL REFERENCES notification_channels (id) ON DELETE CASCADE,
    channel_name    TEXT    NOT NULL,
    event           TEXT    NOT NULL,
    event_key       TEXT    NOT NULL,
    message         TEXT    NOT NULL,
    status          TEXT    NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'sending', 'sent', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT    NOT NULL,
    claimed_until   TEXT,
    last_error      TEXT    NOT NULL DEFAULT '',
    created_at      TEXT    NOT NULL,
    sent_at         TEXT,
    UNIQUE (channel_id, event_key)
);
CREATE INDEX notification_deliveries_due ON notification_deliveries (status, next_attempt_at);
CREATE INDEX notification_deliveries_created ON notification_deliveries (created_at);

-- When a finished record's events were handed to the channels; records finished before this
-- migration count as notified, so upgrading sends nothing about the past.
ALTER TABLE backup_records ADD COLUMN notified_at TEXT;
UPDATE backup_records SET notified_at = finished_at WHERE status <> 'running';
CREATE INDEX backup_records_unnotified ON backup_records (notified_at, status);
ALTER TABLE restore_records ADD COLUMN notified_at TEXT;
UPDATE restore_records SET notified_at = finished_at WHERE status <> 'running';

-- The audit log is filtered by actor and resource, and read newest first.
CREATE INDEX audit_logs_actor ON audit_logs (actor, created_at);
CREATE INDEX audit_logs_resource ON audit_logs (resource_type, resource_id, created_at);

-- Restic-format repositories: each storage target's repository password (sealed; made at the
-- target's first repository run and never changed, since restic's key files hold it), the
-- snapshot each record target holds (empty for archives), and what a repository run found
-- changed (JSON, empty for archives).
ALTER TABLE storage_targets ADD COLUMN repo_password_sealed TEXT;
-- When a run first stored a snapshot there: until then, one repository run at a time may write
-- to the target, so that two first runs never create two repositories in one place.
ALTER TABLE storage_targets ADD COLUMN repo_ready_at TEXT;
ALTER TABLE backup_record_targets ADD COLUMN snapshot_id TEXT NOT NULL DEFAULT '';
ALTER TABLE backup_records ADD COLUMN changes TEXT NOT NULL DEFAULT '';

-- Prunes of each target's repository. The lease: while prune_started_at is set (and younger
-- than the prune lease), no repository run is handed out into the target, and a prune is only
-- started while no repository run writes there. prune_due_at is when the tick prunes next
-- (set when the repository is first written; moved on by every prune).
ALTER TABLE storage_targets ADD COLUMN prune_started_at TEXT;
ALTER TABLE storage_targets ADD COLUMN prune_command_id INTEGER;
ALTER TABLE storage_targets ADD COLUMN prune_due_at TEXT;
ALTER TABLE storage_targets ADD COLUMN pruned_at TEXT;
ALTER TABLE storage_targets ADD COLUMN prune_freed_bytes INTEGER NOT NULL DEFAULT 0;
ALTER TABLE storage_targets ADD COLUMN prune_error TEXT NOT NULL DEFAULT '';
CREATE INDEX idx_storage_targets_prune_due ON storage_targets(prune_due_at);

-- Checks of repositories: one row per check of a record's snapshot or of a whole target, with
-- what it found (JSON lists).
CREATE TABLE verify_records (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    backup_record_id   INTEGER REFERENCES backup_records (id) ON DELETE SET NULL,
    task_id            INTEGER,
    task_name          TEXT    NOT NULL DEFAULT '',
    target_id          INTEGER NOT NULL REFERENCES storage_targets (id) ON DELETE CASCADE,
    target_name        TEXT    NOT NULL,
    node_id            INTEGER NOT NULL,
    command_id         INTEGER,
    status             TEXT    NOT NULL DEFAULT 'running'
                       CHECK (status IN ('running', 'success', 'failed')),
    read_data_percent  INTEGER NOT NULL,
    snapshots          INTEGER NOT NULL DEFAULT 0,
    errors             TEXT    NOT NULL DEFAULT '[]',
    warnings           TEXT    NOT NULL DEFAULT '[]',
    damaged_packs      TEXT    NOT NULL DEFAULT '[]',
    affected_snapshots TEXT    NOT NULL DEFAULT '[]',
    affected_records   TEXT    NOT NULL DEFAULT '[]',
    error              TEXT    NOT NULL DEFAULT '',
    triggered_by       TEXT    NOT NULL,
    started_at         TEXT    NOT NULL,
    finished_at        TEXT
);
CREATE INDEX verify_records_started ON verify_records (started_at);
CREATE INDEX verify_records_record ON verify_records (backup_record_id);
CREATE INDEX verify_records_command ON verify_records (command_id);
-- When the tick next checks each target's whole repository (set when the repository is first
-- written; moved on by every scheduled check).
ALTER TABLE storage_targets ADD COLUMN check_due_at TEXT;
-- What a relayed download carries: `file` (an archive, or a file of a snapshot) or `tar` (a
-- snapshot's folder, streamed as a tar by the agent, which says so with its first chunk).
ALTER TABLE relays ADD COLUMN kind TEXT NOT NULL DEFAULT 'file' CHECK (kind IN ('file', 'tar'));
-- When a recovery kit of the target's repository was last handed out. A target whose repository
-- holds backups is not deleted with them left in place until its password was saved once: the
-- password lives only in this row.
ALTER TABLE storage_targets ADD COLUMN recovery_kit_at TEXT;
-- A fleet of thousands: the tick's backstop and the dashboard find nodes by status, and node
-- pages are read by name without sorting the whole table. `last_seen_at` is deliberately not
-- indexed: every flush of a live node's sighting would then write the index too (D1 counts index
-- entries as rows written), doubling the cost of an idle agent.
CREATE INDEX nodes_status ON nodes (status);
CREATE INDEX nodes_name_nocase ON nodes (name COLLATE NOCASE);
