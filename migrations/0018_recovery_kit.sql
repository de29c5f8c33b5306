-- When a recovery kit of the target's repository was last handed out. A target whose repository
-- holds backups is not deleted with them left in place until its password was saved once: the
-- password lives only in this row.
ALTER TABLE storage_targets ADD COLUMN recovery_kit_at TEXT;
