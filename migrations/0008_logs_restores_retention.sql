-- Live log lines of backup runs and restores. The agent numbers each record's lines from 1, so a
-- batch sent twice is stored once and a log stream resumes after the last line it delivered.
CREATE TABLE run_logs (
    kind      TEXT    NOT NULL CHECK (kind IN ('backup', 'restore')),
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
