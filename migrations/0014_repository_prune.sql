-- Prunes of each target's repository. The lease: while prune_started_at is set (and younger
-- than the prune lease), no repository run is handed out into the target, and a prune is only
-- started while no repository run writes there. prune_due_at is when the tick prunes next
-- (set when the repository is first written; moved on by every prune).
ALTER TABLE storage_targets ADD COLUMN prune_started_at TEXT;
ALTER TABLE storage_targets ADD COLUMN prune_command_id INTEGER;
ALTER TABLE storage_targets ADD COLUMN prune_due_at TEXT;
ALTER TABLE storage_targets ADD COLUMN pruned_at TEXT;
ALTER TABLE storage_targets ADD COLUMN prune_freed_bytes INTEGER NOT NULL DEFAULT 0;
ALTER TABLE storage_targets ADD COLUMN prune_error TEXT NOT NULL DEFAULT '';
CREATE INDEX idx_storage_targets_prune_due ON storage_targets(prune_due_at);
