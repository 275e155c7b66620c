-- Conversations: the write-side identity index, provider ids of sent replies, webhook dead letters,
-- the dashboard read models and their change feed.

-- One customer and one conversation per tenant + channel + external chat id. Aliases (another id of
-- the same person, e.g. a MAX internal id next to the phone chat id) point to the same pair.
CREATE TABLE IF NOT EXISTS channel_identities
(
    tenant_id       uuid        NOT NULL REFERENCES tenants (id),
    channel         text        NOT NULL,
    external_id     text        NOT NULL,
    customer_id     uuid        NOT NULL,
    conversation_id uuid        NOT NULL,
    account_id      uuid        NOT NULL,
    alias_of        text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, channel, external_id)
);
CREATE INDEX IF NOT EXISTS channel_identities_conversation ON channel_identities (conversation_id);

-- Provider ids of replies we sent, written before the send is recorded, so delivery statuses and
-- send echoes find their conversation.
CREATE TABLE IF NOT EXISTS outbound_messages
(
    tenant_id           uuid        NOT NULL,
    channel             text        NOT NULL,
    provider_message_id text        NOT NULL,
    conversation_id     uuid        NOT NULL,
    reply_id            uuid        NOT NULL,
    chat_id             text        NOT NULL,
    created_at          timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, channel, provider_message_id)
);

-- Webhook notifications that were valid but could not be used (unknown types, unknown chats):
-- answered 200 so the provider stops retrying, kept here for inspection.
CREATE TABLE IF NOT EXISTS webhook_dead_letters
(
    id          uuid        PRIMARY KEY,
    tenant_id   uuid        NOT NULL,
    account_id  uuid,
    provider    text        NOT NULL,
    kind        text        NOT NULL,
    reason      text        NOT NULL,
    body        text        NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS webhook_dead_letters_tenant ON webhook_dead_letters (tenant_id, received_at DESC);

CREATE EXTENSION IF NOT EXISTS pg_trgm;

-- Read model: the conversation list.
CREATE TABLE IF NOT EXISTS rm_conversations
(
    conversation_id        uuid        PRIMARY KEY,
    tenant_id              uuid        NOT NULL,
    channel                text        NOT NULL,
    account_id             uuid        NOT NULL,
    chat_id                text        NOT NULL,
    customer_id            uuid        NOT NULL,
    customer_name          text,
    customer_phone         text,
    status                 text        NOT NULL,
    muted                  boolean     NOT NULL DEFAULT false,
    assigned_operator      text,
    last_message_preview   text,
    last_message_at        timestamptz,
    last_message_direction text,
    unread_count           integer     NOT NULL DEFAULT 0,
    pending_suggestions    integer     NOT NULL DEFAULT 0,
    messages_count         integer     NOT NULL DEFAULT 0,
    awaiting_reply_since   timestamptz,
    vehicle                jsonb,
    created_at             timestamptz NOT NULL,
    updated_at             timestamptz NOT NULL,
    last_sequence          bigint      NOT NULL,
    search_text            text        NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS rm_conversations_list ON rm_conversations (tenant_id, last_message_at DESC, conversation_id DESC);
CREATE INDEX IF NOT EXISTS rm_conversations_status ON rm_conversations (tenant_id, status, last_message_at DESC, conversation_id DESC);
CREATE INDEX IF NOT EXISTS rm_conversations_search ON rm_conversations USING gin (search_text gin_trgm_ops);

-- Read model: messages, both directions.
CREATE TABLE IF NOT EXISTS rm_messages
(
    message_id          uuid        PRIMARY KEY,
    tenant_id           uuid        NOT NULL,
    conversation_id     uuid        NOT NULL,
    direction           text        NOT NULL,
    author              text        NOT NULL,
    text                text        NOT NULL,
    attachments         jsonb       NOT NULL DEFAULT '[]',
    provider_message_id text,
    suggestion_id       uuid,
    status              text        NOT NULL,
    failure_reason      text,
    actor               text,
    created_at          timestamptz NOT NULL,
    sent_at             timestamptz,
    delivered_at        timestamptz,
    sequence            bigint      NOT NULL
);
CREATE INDEX IF NOT EXISTS rm_messages_conversation ON rm_messages (conversation_id, created_at, message_id);

-- Read model: the suggestion queue.
CREATE TABLE IF NOT EXISTS rm_suggestions
(
    suggestion_id         uuid        PRIMARY KEY,
    tenant_id             uuid        NOT NULL,
    conversation_id       uuid        NOT NULL,
    request_id            uuid        NOT NULL,
    text                  text        NOT NULL,
    intent                text        NOT NULL,
    confidence            double precision NOT NULL,
    decision              text        NOT NULL,
    explanations          jsonb       NOT NULL DEFAULT '[]',
    source                text        NOT NULL,
    model                 text,
    autosend_block_reason text,
    status                text        NOT NULL,
    final_text            text,
    reply_id              uuid,
    decided_by            text,
    decided_at            timestamptz,
    created_at            timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS rm_suggestions_conversation ON rm_suggestions (conversation_id, created_at);
CREATE INDEX IF NOT EXISTS rm_suggestions_queue ON rm_suggestions (tenant_id, status, created_at);

-- Read model: escalations.
CREATE TABLE IF NOT EXISTS rm_escalations
(
    conversation_id uuid        NOT NULL,
    sequence        bigint      NOT NULL,
    tenant_id       uuid        NOT NULL,
    reason          text        NOT NULL,
    suggestion_id   uuid,
    actor           text,
    status          text        NOT NULL,
    created_at      timestamptz NOT NULL,
    closed_at       timestamptz,
    closed_reason   text,
    PRIMARY KEY (conversation_id, sequence)
);
CREATE INDEX IF NOT EXISTS rm_escalations_tenant ON rm_escalations (tenant_id, status, created_at DESC);

-- Read model: customers.
CREATE TABLE IF NOT EXISTS rm_customers
(
    customer_id     uuid        PRIMARY KEY,
    tenant_id       uuid        NOT NULL,
    channel         text        NOT NULL,
    chat_id         text        NOT NULL,
    name            text,
    phone           text,
    aliases         text[]      NOT NULL DEFAULT '{}',
    conversation_id uuid        NOT NULL,
    first_seen_at   timestamptz NOT NULL,
    last_seen_at    timestamptz NOT NULL,
    messages_count  integer     NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS rm_customers_tenant ON rm_customers (tenant_id, last_seen_at DESC);

-- Read model: per-tenant daily statistics.
CREATE TABLE IF NOT EXISTS rm_daily_stats
(
    tenant_id             uuid    NOT NULL,
    day                   date    NOT NULL,
    messages_in           integer NOT NULL DEFAULT 0,
    messages_out          integer NOT NULL DEFAULT 0,
    suggestions_generated integer NOT NULL DEFAULT 0,
    decided_auto_send     integer NOT NULL DEFAULT 0,
    decided_need_approval integer NOT NULL DEFAULT 0,
    decided_escalate      integer NOT NULL DEFAULT 0,
    suggestions_failed    integer NOT NULL DEFAULT 0,
    approved              integer NOT NULL DEFAULT 0,
    auto_approved         integer NOT NULL DEFAULT 0,
    edited                integer NOT NULL DEFAULT 0,
    rejected              integer NOT NULL DEFAULT 0,
    superseded            integer NOT NULL DEFAULT 0,
    escalations           integer NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, day)
);

-- First-response times (customer message waiting → reply sent), for medians.
CREATE TABLE IF NOT EXISTS rm_response_times
(
    tenant_id       uuid             NOT NULL,
    conversation_id uuid             NOT NULL,
    sequence        bigint           NOT NULL,
    day             date             NOT NULL,
    seconds         double precision NOT NULL,
    PRIMARY KEY (conversation_id, sequence)
);
CREATE INDEX IF NOT EXISTS rm_response_times_day ON rm_response_times (tenant_id, day);

-- Change feed of the read models for live updates (server-sent events), pruned after a day.
CREATE TABLE IF NOT EXISTS read_model_changes
(
    id              bigserial   PRIMARY KEY,
    tenant_id       uuid        NOT NULL,
    entity          text        NOT NULL,
    entity_id       uuid        NOT NULL,
    conversation_id uuid,
    change          text        NOT NULL,
    position        text        NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS read_model_changes_tenant ON read_model_changes (tenant_id, id);

-- Statistics projector state: since when each conversation has been waiting for a reply.
CREATE TABLE IF NOT EXISTS rm_stats_waiting
(
    conversation_id uuid        PRIMARY KEY,
    tenant_id       uuid        NOT NULL,
    waiting_since   timestamptz NOT NULL
);
