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
