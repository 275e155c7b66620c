-- Tenants, users, API tokens, dashboard sessions, channel accounts and encrypted integration secrets.
-- Every row that belongs to a tenant carries tenant_id; every query filters by it.

CREATE TABLE IF NOT EXISTS tenants
(
    id                  uuid        PRIMARY KEY,
    name                text        NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    timezone            text        NOT NULL DEFAULT 'Europe/Moscow',
    working_hours_start time        NOT NULL DEFAULT '09:00',
    working_hours_end   time        NOT NULL DEFAULT '18:00',
    working_days        text[]      NOT NULL DEFAULT ARRAY['mon', 'tue', 'wed', 'thu', 'fri'],
    -- Agent settings (tone, language, company facts, decision thresholds, templates), validated by the API.
    settings            jsonb       NOT NULL DEFAULT '{}',
    status              text        NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'restricted')),
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS users
(
    id                   uuid        PRIMARY KEY,
    tenant_id            uuid        NOT NULL REFERENCES tenants (id),
    email                text        NOT NULL,
    password_hash        text        NOT NULL,
    role                 text        NOT NULL CHECK (role IN ('owner', 'admin', 'operator', 'viewer')),
    must_change_password boolean     NOT NULL DEFAULT true,
    failed_logins        integer     NOT NULL DEFAULT 0,
    locked_until         timestamptz,
    last_login_at        timestamptz,
    disabled_at          timestamptz,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX IF NOT EXISTS users_email ON users (lower(email));
CREATE INDEX IF NOT EXISTS users_tenant ON users (tenant_id);

-- API tokens: only a SHA-256 of the token is stored; the token is shown once.
CREATE TABLE IF NOT EXISTS api_tokens
(
    id           uuid        PRIMARY KEY,
    tenant_id    uuid        NOT NULL REFERENCES tenants (id),
    name         text        NOT NULL,
    role         text        NOT NULL CHECK (role IN ('owner', 'admin', 'operator', 'viewer')),
    prefix       text        NOT NULL,
    token_hash   bytea       NOT NULL UNIQUE,
    created_by   text        NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz,
    revoked_at   timestamptz
);
CREATE INDEX IF NOT EXISTS api_tokens_tenant ON api_tokens (tenant_id);

-- Dashboard sessions: the cookie carries a random id signed with SESSION_SECRET; only its SHA-256 is stored.
CREATE TABLE IF NOT EXISTS sessions
(
    id_hash      bytea       PRIMARY KEY,
    user_id      uuid        NOT NULL REFERENCES users (id),
    tenant_id    uuid        NOT NULL REFERENCES tenants (id),
    csrf_token   text        NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_seen_at timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,
    revoked_at   timestamptz
);
CREATE INDEX IF NOT EXISTS sessions_user ON sessions (user_id);

-- Messenger accounts of a tenant. Non-secret settings in `config`; tokens live in integration_secrets.
CREATE TABLE IF NOT EXISTS channel_accounts
(
    id           uuid        PRIMARY KEY,
    tenant_id    uuid        NOT NULL REFERENCES tenants (id),
    kind         text        NOT NULL CHECK (kind IN ('green_api', 'telegram', 'whatsapp')),
    external_key text        NOT NULL,
    label        text        NOT NULL DEFAULT '',
    config       jsonb       NOT NULL DEFAULT '{}',
    status       text        NOT NULL DEFAULT 'unknown',
    disabled_at  timestamptz,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, kind, external_key)
);

-- Secrets encrypted with AES-256-GCM-SIV under INTEGRATION_SECRETS_MASTER_KEY: a fresh nonce per value, the id
-- of the key that encrypted it, and the tenant and name bound as associated data (a ciphertext copied to
-- another row does not decrypt).
CREATE TABLE IF NOT EXISTS integration_secrets
(
    id          uuid        PRIMARY KEY,
    tenant_id   uuid        REFERENCES tenants (id),
    name        text        NOT NULL,
    key_id      text        NOT NULL,
    nonce       bytea       NOT NULL,
    ciphertext  bytea       NOT NULL,
    hint        text        NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL DEFAULT now(),
    rotated_at  timestamptz
);
CREATE UNIQUE INDEX IF NOT EXISTS integration_secrets_name
    ON integration_secrets (COALESCE(tenant_id, '00000000-0000-0000-0000-000000000000'::uuid), name);
