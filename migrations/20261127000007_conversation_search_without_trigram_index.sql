-- The conversation list is searched by scanning the tenant's rows (newest first) instead of a
-- trigram index. The index had to take new entries on every message (the row's indexed
-- last_message_at changes, so no update is HOT), which made it two thirds of the cost of keeping
-- rm_conversations and capped webhook ingest with projectors running; a tenant's list is small
-- enough to scan (see docs/read-models.md).
DROP INDEX IF EXISTS rm_conversations_search;
