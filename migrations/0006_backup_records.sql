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
