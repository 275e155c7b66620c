-- Leads from web quizzes and site forms.

-- A tenant's lead forms. The webhook URL carries the form's secret (Marquiz cannot send headers);
-- only its SHA-256 is kept.
CREATE TABLE IF NOT EXISTS lead_forms
(
    id          uuid        PRIMARY KEY,
    tenant_id   uuid        NOT NULL REFERENCES tenants (id),
    kind        text        NOT NULL CHECK (kind IN ('marquiz', 'generic')),
    name        text        NOT NULL DEFAULT '',
    secret_hash bytea       NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    disabled_at timestamptz
);
CREATE INDEX IF NOT EXISTS lead_forms_tenant ON lead_forms (tenant_id, created_at);

-- The leads board: one row per lead, kept by the `leads` projector.
CREATE TABLE IF NOT EXISTS rm_leads
(
    lead_id         uuid        PRIMARY KEY,
    tenant_id       uuid        NOT NULL,
    form_id         uuid        NOT NULL,
    form_kind       text        NOT NULL,
    source          text        NOT NULL,
    status          text        NOT NULL,
    kind            text        NOT NULL,
    name            text,
    phone           text,
    email           text,
    telegram        text,
    preferred_channel text,
    channel         text,
    account_id      uuid,
    vin             text,
    car             text,
    gearbox_type    text,
    city            text,
    fields          jsonb       NOT NULL DEFAULT '{}',
    text            text        NOT NULL DEFAULT '',
    failure_reason  text,
    note            text,
    conversation_id uuid,
    round           integer     NOT NULL DEFAULT 0,
    attempts        integer     NOT NULL DEFAULT 0,
    submissions     integer     NOT NULL DEFAULT 1,
    due_at          timestamptz,
    no_reply_due_at timestamptz,
    assigned_to     text,
    lost_reason     text,
    received_at     timestamptz NOT NULL,
    contacted_at    timestamptz,
    replied_at      timestamptz,
    qualified_at    timestamptz,
    won_at          timestamptz,
    lost_at         timestamptz,
    updated_at      timestamptz NOT NULL,
    last_sequence   bigint      NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS rm_leads_list ON rm_leads (tenant_id, received_at DESC, lead_id DESC);
CREATE INDEX IF NOT EXISTS rm_leads_status ON rm_leads (tenant_id, status, received_at DESC, lead_id DESC);
CREATE INDEX IF NOT EXISTS rm_leads_conversation ON rm_leads (tenant_id, conversation_id);
