-- Projectors load the rows a batch touches by conversation: without these, each batch of the
-- customers projector scanned every customer (and the escalations projector every escalation),
-- a cost that grew with the tenant's history.
CREATE INDEX IF NOT EXISTS rm_customers_conversation ON rm_customers (conversation_id);
CREATE INDEX IF NOT EXISTS rm_escalations_open ON rm_escalations (conversation_id) WHERE status = 'open';
