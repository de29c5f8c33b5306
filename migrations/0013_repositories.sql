-- Restic-format repositories: each storage target's repository password (sealed; made at the
-- target's first repository run and never changed, since restic's key files hold it), the
-- snapshot each record target holds, and what a repository run found changed (JSON).
ALTER TABLE storage_targets ADD COLUMN repo_password_sealed TEXT;
-- When a run first stored a snapshot there: until then, one repository run at a time may write
-- to the target, so that two first runs never create two repositories in one place.
ALTER TABLE storage_targets ADD COLUMN repo_ready_at TEXT;
ALTER TABLE backup_record_targets ADD COLUMN snapshot_id TEXT NOT NULL DEFAULT '';
ALTER TABLE backup_records ADD COLUMN changes TEXT NOT NULL DEFAULT '';
