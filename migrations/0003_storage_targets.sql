-- Storage targets. The whole config is sealed (AES-256-GCM, key from the SEAL_KEY secret, fresh
-- nonce, 'storage_targets/<uid>' as associated data), so a copied ciphertext cannot be moved to
-- another row and nothing secret is stored in the clear.
CREATE TABLE storage_targets (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    uid               TEXT    NOT NULL UNIQUE,
    name              TEXT    NOT NULL UNIQUE COLLATE NOCASE,
    type              TEXT    NOT NULL,
    description       TEXT    NOT NULL DEFAULT '',
    enabled           INTEGER NOT NULL DEFAULT 1,
    starred           INTEGER NOT NULL DEFAULT 0,
    config_sealed     TEXT    NOT NULL,
    config_version    INTEGER NOT NULL DEFAULT 1,
    quota_bytes       INTEGER NOT NULL DEFAULT 0,
    last_tested_at    TEXT,
    last_test_status  TEXT    NOT NULL DEFAULT 'unknown'
                      CHECK (last_test_status IN ('unknown', 'success', 'failed')),
    last_test_message TEXT    NOT NULL DEFAULT '',
    created_at        TEXT    NOT NULL,
    updated_at        TEXT    NOT NULL
);
