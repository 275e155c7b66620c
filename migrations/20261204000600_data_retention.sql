-- Data retention: how long each tenant keeps personal data that lives outside the event log, and
-- the record of every deletion made for it (docs/privacy.md).

-- Vehicle-lookup evidence (screenshots, page HTML, step traces) older than this many days is
-- deleted by the retention pass.
ALTER TABLE tenants ADD COLUMN IF NOT EXISTS lookup_evidence_retention_days integer NOT NULL DEFAULT 30
    CHECK (lookup_evidence_retention_days BETWEEN 1 AND 3650);
-- Customers without activity for this many months are erased by customer erasure; NULL: never.
ALTER TABLE tenants ADD COLUMN IF NOT EXISTS erase_inactive_customers_months integer
    CHECK (erase_inactive_customers_months BETWEEN 1 AND 600);

-- What was deleted, of which tenant, why and by whom: one row per subject (for `lookup_evidence`,
-- the lookup whose evidence went) and pass, written in the transaction of the deletion itself.
-- Holds nothing of the deleted content.
CREATE TABLE IF NOT EXISTS data_deletions
(
    id         bigserial   PRIMARY KEY,
    tenant_id  uuid        NOT NULL,
    kind       text        NOT NULL,
    subject    text        NOT NULL,
    rows       integer     NOT NULL,
    bytes      bigint      NOT NULL,
    reason     text        NOT NULL,
    actor      text        NOT NULL,
    deleted_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS data_deletions_subject ON data_deletions (tenant_id, kind, subject);

-- The retention pass reads a tenant's evidence oldest first.
CREATE INDEX IF NOT EXISTS lookup_evidence_age ON lookup_evidence (tenant_id, created_at);
