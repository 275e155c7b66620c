-- Projectors are now woken by the writers after their appends commit (coalesced, one
-- notification at a time per process). The per-statement NOTIFY trigger made every appending
-- transaction take Postgres's notification queue lock at commit, serialising commits: at 32
-- writers it cut append throughput to about a third.
DROP TRIGGER IF EXISTS events_notify ON events;
DROP FUNCTION IF EXISTS events_notify();
