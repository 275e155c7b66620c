-- Vehicle lookups: what the browser saw (kept apart from the events), the answer cache per
-- normalised identifier, and the read model of lookups.

-- Screenshots, page HTML and step traces of lookup attempts. Events reference rows by id; the API
-- serves them to the lookup's tenant only.
CREATE TABLE IF NOT EXISTS lookup_evidence
(
    id           uuid        PRIMARY KEY,
    tenant_id    uuid        NOT NULL,
    lookup_id    uuid        NOT NULL,
    round        integer     NOT NULL,
    attempt      integer     NOT NULL,
    kind         text        NOT NULL CHECK (kind IN ('screenshot', 'html', 'trace')),
    content_type text        NOT NULL,
    content      bytea       NOT NULL,
    size_bytes   integer     NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS lookup_evidence_lookup ON lookup_evidence (tenant_id, lookup_id, created_at);

-- Catalogue answers per normalised identifier (`VIN:<value>` / `FRAME:<value>`), valid until
-- `expires_at` (shorter for not-found answers). Public catalogue data, shared by tenants; no
-- screenshots or HTML. Failures are never cached.
CREATE TABLE IF NOT EXISTS vehicle_lookup_cache
(
    cache_key  text        PRIMARY KEY,
    id_type    text        NOT NULL,
    value      text        NOT NULL,
    status     text        NOT NULL CHECK (status IN ('FOUND', 'MODEL_ONLY', 'NOT_FOUND')),
    outcome    jsonb       NOT NULL,
    source     text        NOT NULL,
    expires_at timestamptz NOT NULL,
    hits       integer     NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS vehicle_lookup_cache_expiry ON vehicle_lookup_cache (expires_at);

-- Read model: vehicle lookups with their rounds, attempts, reasons and evidence references.
CREATE TABLE IF NOT EXISTS rm_vehicle_lookups
(
    lookup_id           uuid        PRIMARY KEY,
    tenant_id           uuid        NOT NULL,
    conversation_id     uuid,
    message_id          uuid,
    id_type             text        NOT NULL,
    value               text        NOT NULL,
    status              text        NOT NULL,
    result_status       text,
    request_source      text,
    requested_by        text,
    round               integer     NOT NULL DEFAULT 0,
    attempts            integer     NOT NULL DEFAULT 0,
    attempts_total      integer     NOT NULL DEFAULT 0,
    last_error          text,
    retry_at            timestamptz,
    result              jsonb,
    verification        text        NOT NULL DEFAULT 'none',
    confirmed           jsonb,
    price_lookup_wanted jsonb       NOT NULL DEFAULT '[]',
    history             jsonb       NOT NULL DEFAULT '[]',
    created_at          timestamptz NOT NULL,
    updated_at          timestamptz NOT NULL,
    completed_at        timestamptz,
    last_sequence       bigint      NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS rm_vehicle_lookups_list ON rm_vehicle_lookups (tenant_id, created_at DESC, lookup_id DESC);
CREATE INDEX IF NOT EXISTS rm_vehicle_lookups_status
    ON rm_vehicle_lookups (tenant_id, status, created_at DESC, lookup_id DESC);
CREATE INDEX IF NOT EXISTS rm_vehicle_lookups_conversation
    ON rm_vehicle_lookups (tenant_id, conversation_id, created_at DESC, lookup_id DESC);
