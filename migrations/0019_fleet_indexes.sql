-- A fleet of thousands: the tick's backstop and the dashboard find online nodes by status and
-- last sighting, and node pages are read by name without sorting the whole table.
CREATE INDEX nodes_status_seen ON nodes (status, last_seen_at);
CREATE INDEX nodes_name_nocase ON nodes (name COLLATE NOCASE);
