-- Customers' files stored by the media worker: one row per tenant and content hash (the object
-- store holds the bytes under <tenant>/<sha[..2]>/<sha>). Served only through signed links to the
-- owning tenant.
CREATE TABLE IF NOT EXISTS media_objects (
    tenant_id uuid NOT NULL,
    sha256 text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    size bigint NOT NULL CHECK (size >= 0),
    mime_type text NOT NULL,
    thumbnail_sha256 text,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, sha256)
);
