-- What a relayed download carries: `file` (an archive, or a file of a snapshot) or `tar` (a
-- snapshot's folder, streamed as a tar by the agent, which says so with its first chunk).
ALTER TABLE relays ADD COLUMN kind TEXT NOT NULL DEFAULT 'file' CHECK (kind IN ('file', 'tar'));
