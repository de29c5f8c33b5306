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
