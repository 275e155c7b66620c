-- One reader per process follows the live-update feed of every tenant in (tx_id, id) order.
CREATE INDEX IF NOT EXISTS read_model_changes_tx ON read_model_changes (tx_id, id);
