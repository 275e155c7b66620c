-- Data keys of customers (and of leads before they become customers): each subject's customer
-- data in events is sealed with its own key, stored here wrapped by the master key
-- (docs/privacy.md). Erasing a subject destroys its key: key_id, nonce and wrapped become NULL and
-- the row stays as a tombstone, so the subject never gets a new key and its sealed fields read
-- "[erased]" for good.
CREATE TABLE IF NOT EXISTS data_keys
(
    subject_id uuid        PRIMARY KEY,
    tenant_id  uuid        NOT NULL,
    kind       text        NOT NULL CHECK (kind IN ('customer', 'lead')),
    key_id     text,
    nonce      bytea,
    wrapped    bytea,
    created_at timestamptz NOT NULL DEFAULT now(),
    erased_at  timestamptz,
    erased_by  text,
    CHECK ((wrapped IS NULL) = (erased_at IS NOT NULL)),
    CHECK ((wrapped IS NULL) = (key_id IS NULL) AND (wrapped IS NULL) = (nonce IS NULL))
);
CREATE INDEX IF NOT EXISTS data_keys_tenant ON data_keys (tenant_id, kind);
-- Master-key rotation re-wraps the keys still under an older master key.
CREATE INDEX IF NOT EXISTS data_keys_master ON data_keys (key_id) WHERE wrapped IS NOT NULL;

-- Progress of `aisales privacy migrate` (sealing the customer data of events stored before
-- sealing existed): the global position it reached, so an interrupted run goes on from there.
CREATE TABLE IF NOT EXISTS privacy_migration
(
    name            text        PRIMARY KEY,
    global_position bigint      NOT NULL,
    updated_at      timestamptz NOT NULL DEFAULT now()
);
