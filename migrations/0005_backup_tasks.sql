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
