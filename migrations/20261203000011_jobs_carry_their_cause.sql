-- A job carries the cause of the event that asked for it (correlation id and the event's place in
-- the log), so the commands a worker issues continue that event's chain. Jobs recorded before have
-- none and start a chain of their own.
ALTER TABLE work_items ADD COLUMN IF NOT EXISTS cause jsonb;
