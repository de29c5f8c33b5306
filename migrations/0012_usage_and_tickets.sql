-- Hardening: the last measured usage of each storage target (viewers read it; only an
-- operator measures anew) and single-use stream tickets.

-- Each storage target's last measured usage.
CREATE TABLE storage_usage (
    target_id   INTEGER PRIMARY KEY REFERENCES storage_targets (id) ON DELETE CASCADE,
    node_id     INTEGER NOT NULL,
    usage       TEXT    NOT NULL,
    measured_at TEXT    NOT NULL
);

-- Stream tickets already used: a ticket opens one stream or download once. Rows go when the
-- ticket would have expired anyway.
CREATE TABLE spent_tickets (
    jti        TEXT PRIMARY KEY,
    expires_at TEXT NOT NULL
);
