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
