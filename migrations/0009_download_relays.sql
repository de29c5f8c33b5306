-- Downloads relayed by an agent (for targets the Worker cannot read itself, such as a node's own
-- disk): the agent posts the artifact in numbered chunks and the download request streams them
-- out in order, deleting each once sent. At most a few chunks wait at a time, so the table stays
-- small; the tick removes relays nobody finished.
CREATE TABLE relays (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    record_id  INTEGER NOT NULL,
    node_id    INTEGER NOT NULL,
    command_id INTEGER,
    status     TEXT    NOT NULL DEFAULT 'waiting'
               CHECK (status IN ('waiting', 'sending', 'done', 'failed')),
    chunks     INTEGER NOT NULL DEFAULT 0,
    error      TEXT    NOT NULL DEFAULT '',
    created_at TEXT    NOT NULL
);
CREATE INDEX relays_command ON relays (command_id);

CREATE TABLE relay_chunks (
    relay_id INTEGER NOT NULL,
    seq      INTEGER NOT NULL,
    data     TEXT    NOT NULL,
    PRIMARY KEY (relay_id, seq)
) WITHOUT ROWID;
