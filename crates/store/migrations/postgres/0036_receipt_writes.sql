-- A receipt's writes, lighter (issue 20, `bench node`).
--
-- Few receipts carry an anomaly, and every query that uses this index asks
-- for those that do (`anomaly IS NOT NULL`, `anomaly > ''`): indexing only
-- them spares each plain receipt one index entry.
DROP INDEX receipts_anomaly;
CREATE INDEX receipts_anomaly ON receipts (ente, anomaly) WHERE anomaly IS NOT NULL;

-- A receipt's XML (2.5 kB) is compressed on insert: lz4 costs a fraction
-- of pglz's time. Only new values change; PostgreSQL without lz4 keeps pglz.
DO $$
BEGIN
    ALTER TABLE receipts ALTER COLUMN raw_xml SET COMPRESSION lz4;
EXCEPTION WHEN feature_not_supported THEN
    NULL;
END
$$;

-- Paying an option changes none of its indexed columns, so PostgreSQL can
-- update it in place (HOT, no index entry) if its page has room: leave
-- some on each new page.
ALTER TABLE payment_options SET (fillfactor = 90);
