-- Aggregates a projector could not apply: the projector skips their events and goes on with every
-- other aggregate; `aisales projections retry-parked NAME` applies them after a fix.
CREATE TABLE projector_parked (
    projector       text        NOT NULL,
    aggregate_type  text        NOT NULL,
    aggregate_id    text        NOT NULL,
    tenant_id       uuid,
    -- the first event not applied
    tx_id           xid8        NOT NULL,
    global_position bigint      NOT NULL,
    sequence        bigint      NOT NULL,
    event_type      text        NOT NULL,
    error           text        NOT NULL,
    attempts        integer     NOT NULL DEFAULT 1,
    parked_at       timestamptz NOT NULL DEFAULT now(),
    retried_at      timestamptz,
    PRIMARY KEY (projector, aggregate_type, aggregate_id)
);
