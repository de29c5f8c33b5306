-- A fleet of thousands: the tick's backstop and the dashboard find nodes by status, and node
-- pages are read by name without sorting the whole table. `last_seen_at` is deliberately not
-- indexed: every flush of a live node's sighting would then write the index too (D1 counts index
-- entries as rows written), doubling the cost of an idle agent.
CREATE INDEX nodes_status ON nodes (status);
CREATE INDEX nodes_name_nocase ON nodes (name COLLATE NOCASE);
