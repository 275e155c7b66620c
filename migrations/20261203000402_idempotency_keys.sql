-- Answers to command requests that carried an `Idempotency-Key`, per tenant and caller, so that a
-- retried request (after a timeout or a 503 with Retry-After) gets the first answer again instead of
-- running twice. Kept for 24 hours.
CREATE TABLE IF NOT EXISTS idempotency_keys
(
    tenant_id    uuid        NOT NULL,
    actor        text        NOT NULL,
    key          text        NOT NULL,
    -- SHA-256 of method, path and body: the same key with another request is refused.
    request_hash bytea       NOT NULL,
    -- NULL while the first request runs.
    status       smallint,
    content_type text,
    body         bytea,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, actor, key)
);
CREATE INDEX IF NOT EXISTS idempotency_keys_created ON idempotency_keys (created_at);
