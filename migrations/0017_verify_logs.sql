-- Live logs of checks: run_logs takes `verify` lines too. SQLite cannot change a CHECK, so the
-- table is made anew and its lines copied over (the renamed table's name is stored quoted).
CREATE TABLE run_logs_next (
    kind      TEXT    NOT NULL CHECK (kind IN ('backup', 'restore', 'verify')),
    record_id INTEGER NOT NULL,
    seq       INTEGER NOT NULL,
    at        TEXT    NOT NULL,
    level     TEXT    NOT NULL CHECK (level IN ('info', 'warn', 'error')),
    message   TEXT    NOT NULL,
    PRIMARY KEY (kind, record_id, seq)
) WITHOUT ROWID;
INSERT INTO run_logs_next (kind, record_id, seq, at, level, message)
    SELECT kind, record_id, seq, at, level, message FROM run_logs;
DROP TABLE run_logs;
ALTER TABLE run_logs_next RENAME TO run_logs;
