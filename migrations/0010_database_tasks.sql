-- Database tasks (mysql, postgresql, sqlite). A task's database password is sealed on its own
-- (AES-256-GCM, 'backup_tasks/<uid>/dbPassword' as associated data; `uid` never changes, unlike
-- `revision`), so `spec` still holds no secret. File specs gain the type tag that every spec now
-- carries.
ALTER TABLE backup_tasks ADD COLUMN uid TEXT NOT NULL DEFAULT '';
UPDATE backup_tasks SET uid = revision WHERE uid = '';
CREATE UNIQUE INDEX backup_tasks_uid ON backup_tasks (uid);
ALTER TABLE backup_tasks ADD COLUMN password_sealed TEXT NOT NULL DEFAULT '';
UPDATE backup_tasks SET spec = json_set(spec, '$.type', 'file')
WHERE type = 'file' AND json_extract(spec, '$.type') IS NULL;

-- What a run read, kept on its record so that a restore never depends on how the task was
-- changed (or whether it still exists): the task's type, its source as JSON (no secret), and for
-- database dumps where each database lies in the uncompressed artifact.
ALTER TABLE backup_records ADD COLUMN kind TEXT NOT NULL DEFAULT 'file';
ALTER TABLE backup_records ADD COLUMN source TEXT NOT NULL DEFAULT '';
ALTER TABLE backup_records ADD COLUMN sections TEXT NOT NULL DEFAULT '[]';

-- Database restores: which databases of the backup went into which database (JSON).
ALTER TABLE restore_records ADD COLUMN target_databases TEXT NOT NULL DEFAULT '[]';
