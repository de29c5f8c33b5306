-- Hardening: the last measured usage of each storage target (viewers read it; only an
-- operator measures anew), single-use stream tickets, counted refusals in the audit log, and
-- relayed downloads that are not purged while they are read, and the pace of agents' calls.

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

-- Refusals that are counted, not each written to the audit log (sign-ins refused by the rate
-- limit, setup after setup): per client address and kind, the audit row of the current window and
-- how many refusals it stands for.
CREATE TABLE audit_summaries (
    key      TEXT    PRIMARY KEY,
    audit_id INTEGER NOT NULL,
    refused  INTEGER NOT NULL,
    until    TEXT    NOT NULL
);

-- When a relayed download last took a chunk: the tick purges only relays that nobody has read
-- from for an hour, never one that is still being downloaded.
CREATE TABLE relay_reads (
    relay_id INTEGER PRIMARY KEY REFERENCES relays (id) ON DELETE CASCADE,
    read_at  TEXT    NOT NULL
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
