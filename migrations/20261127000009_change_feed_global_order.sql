-- The live-update feed (read_model_changes) is written by several projectors, each in its own
-- transaction. Ids come from a sequence, so a transaction that took id 5 can commit after one that
-- took id 6: a reader that remembers "the last id I sent" would skip id 5 for good. Each change
-- now records its transaction, and the stream reads in (tx_id, id) order, never past the oldest
-- transaction still in flight: the same gap-safe rule as the event reader.
ALTER TABLE read_model_changes ADD COLUMN IF NOT EXISTS tx_id xid8 NOT NULL DEFAULT pg_current_xact_id();
CREATE INDEX IF NOT EXISTS read_model_changes_tenant_tx ON read_model_changes (tenant_id, tx_id, id);
-- Superseded by the index above (no data is lost by dropping an index).
DROP INDEX IF EXISTS read_model_changes_tenant;
