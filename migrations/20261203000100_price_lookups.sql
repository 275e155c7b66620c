-- Price lookups: the tenant's own price list, the tenant's price settings, market snapshots shared
-- by tenants (with their TTLs), and the read model of price lookups.

-- The tenant's own price list (`aisales prices import`). `code` is the normalised OEM number or
-- transmission code (upper case, no spaces).
CREATE TABLE IF NOT EXISTS price_list_items
(
    tenant_id  uuid        NOT NULL,
    code       text        NOT NULL,
    condition  text        NOT NULL DEFAULT '',
    supplier   text        NOT NULL DEFAULT '',
    title      text,
    price      bigint      NOT NULL CHECK (price > 0),
    currency   text        NOT NULL DEFAULT 'RUB',
    stock      integer,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, code, condition, supplier)
);

-- How a tenant turns market prices into offers (margin, rounding, mileage tiers), whether an AI
-- estimate may be asked and whether a failed search is escalated, templates and payment methods.
CREATE TABLE IF NOT EXISTS tenant_price_settings
(
    tenant_id           uuid        PRIMARY KEY,
    settings            jsonb       NOT NULL DEFAULT '{}',
    ai_estimate_enabled boolean     NOT NULL DEFAULT false,
    escalation_enabled  boolean     NOT NULL DEFAULT true,
    templates           jsonb       NOT NULL DEFAULT '{}',
    payment_methods     jsonb       NOT NULL DEFAULT '[]',
    updated_at          timestamptz NOT NULL DEFAULT now()
);

-- Market results per search key, shared by every tenant (margins are per tenant and applied
-- later). `kind`: market (7 days), not_found (24 hours), estimate (2 hours). A row answers only
-- while `expires_at` is in the future; every read checks it.
CREATE TABLE IF NOT EXISTS price_snapshots
(
    search_key   text        PRIMARY KEY,
    kind         text        NOT NULL CHECK (kind IN ('market', 'not_found', 'estimate')),
    min_price    bigint,
    max_price    bigint,
    median_price bigint,
    currency     text        NOT NULL DEFAULT 'RUB',
    listings     jsonb       NOT NULL DEFAULT '[]',
    urls_checked text[]      NOT NULL DEFAULT '{}',
    created_at   timestamptz NOT NULL,
    expires_at   timestamptz NOT NULL,
    hits         integer     NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS price_snapshots_expiry ON price_snapshots (expires_at);

-- Read model: price lookups with their status, range, listings, sources and the conversations
-- that asked.
CREATE TABLE IF NOT EXISTS rm_price_lookups
(
    id               uuid        PRIMARY KEY,
    tenant_id        uuid        NOT NULL,
    search_key       text        NOT NULL,
    status           text        NOT NULL,
    subject          jsonb       NOT NULL DEFAULT '{}',
    round            integer     NOT NULL DEFAULT 0,
    revision         integer     NOT NULL DEFAULT 0,
    basis            text,
    min_price        bigint,
    max_price        bigint,
    median_price     bigint,
    currency         text        NOT NULL DEFAULT 'RUB',
    confidence       double precision,
    confidence_level text,
    listings         jsonb       NOT NULL DEFAULT '[]',
    dropped          integer     NOT NULL DEFAULT 0,
    own_offers       jsonb       NOT NULL DEFAULT '[]',
    sources          jsonb       NOT NULL DEFAULT '[]',
    urls_checked     jsonb       NOT NULL DEFAULT '[]',
    ready_queries    jsonb       NOT NULL DEFAULT '[]',
    failure          text,
    conversation_ids uuid[]      NOT NULL DEFAULT '{}',
    requesters       jsonb       NOT NULL DEFAULT '[]',
    offers           jsonb       NOT NULL DEFAULT '[]',
    expires_at       timestamptz,
    created_at       timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL,
    last_sequence    bigint      NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS rm_price_lookups_list ON rm_price_lookups (tenant_id, updated_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS rm_price_lookups_conversation ON rm_price_lookups USING gin (conversation_ids);
