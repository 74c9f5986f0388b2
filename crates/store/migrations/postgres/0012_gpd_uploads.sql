-- GPD's massive uploads (gpd_massive_v2.json): one row per uploaded file,
-- named by its file id. Its positions go through the same use cases as GPD
-- v2's calls, a chunk at a time; the row counts what is done and keeps
-- GPD's report (the answers, as JSON), and the supply it appears as in the
-- archive keeps the row-level errors.
CREATE TABLE gpd_uploads (
    file_id TEXT PRIMARY KEY,
    ente TEXT NOT NULL REFERENCES enti(fiscal_code),
    broker TEXT NOT NULL,
    operation TEXT NOT NULL,
    supply_id BIGINT NOT NULL,
    submitted BIGINT NOT NULL,
    processed BIGINT NOT NULL,
    responses TEXT NOT NULL,
    started_at BIGINT NOT NULL,
    ended_at BIGINT
);
CREATE INDEX gpd_uploads_by_org ON gpd_uploads (ente, broker, started_at);

-- The debtor a receipt states, which GPD's receipts API filters on
-- (a KO receipt reaches no position to take it from).
ALTER TABLE receipts ADD COLUMN debtor TEXT;
