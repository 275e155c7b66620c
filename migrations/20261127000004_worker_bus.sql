-- Work the aggregates asked for, as seen by the `work` projector: the durable record behind the Redis
-- streams. A job stays here until its aggregate records it done, so a job Redis lost (restart without
-- persistence, FLUSHALL, crash between commit and XADD) is dispatched again by the sweeper.
CREATE TABLE IF NOT EXISTS work_items
(
    job_id         text        PRIMARY KEY,
    kind           text        NOT NULL,
    tenant_id      uuid,
    aggregate_type text        NOT NULL,
    aggregate_id   text        NOT NULL,
    payload        jsonb       NOT NULL DEFAULT '{}',
    status         text        NOT NULL CHECK (status IN ('requested', 'started', 'done', 'failed')),
    due_at         timestamptz NOT NULL,
    attempts       integer     NOT NULL DEFAULT 0,
    last_error     text,
    requested_at   timestamptz NOT NULL,
    updated_at     timestamptz NOT NULL,
    -- Operational columns, written by the dispatcher and sweeper (not derived from events).
    dispatched_at  timestamptz,
    dispatch_count integer     NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS work_items_outstanding ON work_items (due_at) WHERE status IN ('requested', 'started');
CREATE INDEX IF NOT EXISTS work_items_aggregate ON work_items (aggregate_type, aggregate_id);
