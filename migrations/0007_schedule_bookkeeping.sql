-- What the scheduler did with a task's last fire time that it could not run (for example because
-- the previous run was still going), and how many fire times a scheduled run stands for.
ALTER TABLE backup_tasks ADD COLUMN last_skip TEXT NOT NULL DEFAULT '';
ALTER TABLE backup_records ADD COLUMN coalesced INTEGER NOT NULL DEFAULT 0;
