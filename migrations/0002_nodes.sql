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
