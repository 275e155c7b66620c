-- Event payloads over about 2 kB (a lead with its customer data sealed, for one) are compressed
-- when stored. lz4 compresses and decompresses several times faster than PostgreSQL's default
-- (pglz) for about the same size, and every event is written once and read by every projector.
-- Only rows written from now on use it; older rows stay readable as they are. A server built
-- without lz4 keeps pglz.
DO $$
BEGIN
    ALTER TABLE events ALTER COLUMN payload SET COMPRESSION lz4;
EXCEPTION WHEN feature_not_supported OR invalid_parameter_value THEN
    RAISE NOTICE 'lz4 is not available in this PostgreSQL build; event payloads keep pglz';
END
$$;
