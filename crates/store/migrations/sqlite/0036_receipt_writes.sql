-- A receipt's writes, lighter (issue 20, `bench node`).
--
-- Few receipts carry an anomaly, and every query that uses this index asks
-- for those that do (`anomaly IS NOT NULL`, `anomaly > ''`): indexing only
-- them spares each plain receipt one index entry.
DROP INDEX receipts_anomaly;
CREATE INDEX receipts_anomaly ON receipts (ente, anomaly) WHERE anomaly IS NOT NULL;

-- PostgreSQL also compresses a receipt's XML with lz4 and leaves room in
-- payment_options' pages: SQLite has neither setting.
