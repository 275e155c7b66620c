-- Event store: the table layout of postgres-es 0.5 (so its repository reads it), plus the columns
-- that give every event a global, gap-safe order and the tenant it belongs to.
--
-- Readers take events in (tx_id, global_position) order and never past
-- pg_snapshot_xmin(pg_current_snapshot()): a transaction that is still open can hold a smaller
-- global_position than rows already committed, so ordering by global_position alone skips events.

CREATE TABLE IF NOT EXISTS events
(
    aggregate_type  text                         NOT NULL,
    aggregate_id    text                         NOT NULL,
    sequence        bigint CHECK (sequence >= 0) NOT NULL,
    event_type      text                         NOT NULL,
    event_version   text                         NOT NULL,
    payload         json                         NOT NULL,
    metadata        json                         NOT NULL,
    PRIMARY KEY (aggregate_type, aggregate_id, sequence)
);

ALTER TABLE events ADD COLUMN IF NOT EXISTS global_position bigserial;
ALTER TABLE events ADD COLUMN IF NOT EXISTS tx_id xid8 NOT NULL DEFAULT pg_current_xact_id();
ALTER TABLE events ADD COLUMN IF NOT EXISTS recorded_at timestamptz NOT NULL DEFAULT now();
ALTER TABLE events ADD COLUMN IF NOT EXISTS tenant_id uuid;

CREATE UNIQUE INDEX IF NOT EXISTS events_global_position ON events (global_position);
CREATE INDEX IF NOT EXISTS events_tx_position ON events (tx_id, global_position);
CREATE INDEX IF NOT EXISTS events_tenant_recorded ON events (tenant_id, recorded_at) WHERE tenant_id IS NOT NULL;

-- One notification per inserting statement wakes the projectors; they also poll, so a lost
-- notification only delays them.
CREATE OR REPLACE FUNCTION events_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('events_appended', '');
    RETURN NULL;
END;
$$;

CREATE OR REPLACE TRIGGER events_notify AFTER INSERT ON events
    FOR EACH STATEMENT EXECUTE FUNCTION events_notify();

-- Snapshots of aggregate state, written every N events so long streams load quickly. A snapshot
-- is a cache: it is never the source of truth, and a state_version change makes old ones unused.
CREATE TABLE IF NOT EXISTS aggregate_snapshots
(
    aggregate_type text        NOT NULL,
    aggregate_id   text        NOT NULL,
    state_version  integer     NOT NULL,
    last_sequence  bigint      NOT NULL CHECK (last_sequence >= 0),
    payload        jsonb       NOT NULL,
    updated_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (aggregate_type, aggregate_id)
);

-- One row per projector: the last event it applied, saved in the same transaction as its
-- read-model writes.
CREATE TABLE IF NOT EXISTS projector_checkpoints
(
    name            text        PRIMARY KEY,
    tx_id           xid8        NOT NULL DEFAULT '0',
    position        bigint      NOT NULL DEFAULT 0,
    events_applied  bigint      NOT NULL DEFAULT 0,
    updated_at      timestamptz NOT NULL DEFAULT now()
);

-- Built-in read model: how many events each aggregate has and the highest sequence seen.
-- `projections verify` compares it with the event log; a lost or doubled event shows at once.
CREATE TABLE IF NOT EXISTS stream_stats
(
    aggregate_type  text        NOT NULL,
    aggregate_id    text        NOT NULL,
    tenant_id       uuid,
    events          bigint      NOT NULL,
    last_sequence   bigint      NOT NULL,
    first_recorded  timestamptz NOT NULL,
    last_recorded   timestamptz NOT NULL,
    PRIMARY KEY (aggregate_type, aggregate_id)
);
