-- Nothing reads the event log by tenant and time: tenant checks read an aggregate's first event
-- through the primary key, and projectors read in (tx_id, global_position) order. The index cost
-- every appended event one more index entry (and its WAL) for no query. Dropping an index loses
-- no data; should such a query come, the index can be built again concurrently.
DROP INDEX IF EXISTS events_tenant_recorded;
