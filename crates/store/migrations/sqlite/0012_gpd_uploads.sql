-- GPD's massive uploads (gpd_massive_v2.json): one row per uploaded file,
-- named by its file id. Its positions go through the same use cases as GPD
-- v2's calls, a chunk at a time; the row counts what is done and keeps
-- GPD's report (one answer per item, below), and the supply it appears as
-- in the archive keeps the row-level errors. Until it ends, the row also
-- keeps the file's items (`items`, the application's JSON) and who works on
-- it (`owner`, `heartbeat`): each chunk's writes commit with its progress
-- and answers, so an upload cut short resumes where it stopped, never
-- twice.
CREATE TABLE gpd_uploads (
    file_id TEXT PRIMARY KEY,
    ente TEXT NOT NULL REFERENCES enti(fiscal_code),
    broker TEXT NOT NULL,
    operation TEXT NOT NULL,
    supply_id BIGINT NOT NULL,
    submitted BIGINT NOT NULL,
    processed BIGINT NOT NULL,
    started_at BIGINT NOT NULL,
    ended_at BIGINT,
    items BLOB,
    owner TEXT NOT NULL,
    heartbeat BIGINT NOT NULL
);
CREATE INDEX gpd_uploads_unfinished ON gpd_uploads (heartbeat) WHERE ended_at IS NULL;
CREATE INDEX gpd_uploads_by_org ON gpd_uploads (ente, broker, started_at);

-- The answer to each item of an upload (its place in the file, from 0):
-- the report groups them by status and message; `code` is incasso's stable
-- code of a refusal (empty for a success), for the supply's row errors.
CREATE TABLE gpd_upload_answers (
    file_id TEXT NOT NULL REFERENCES gpd_uploads(file_id),
    item BIGINT NOT NULL,
    status_code BIGINT NOT NULL,
    code TEXT NOT NULL,
    message TEXT NOT NULL,
    iupd TEXT NOT NULL,
    PRIMARY KEY (file_id, item)
);

-- The debtor a receipt states, which GPD's receipts API filters on
-- (a KO receipt reaches no position to take it from).
ALTER TABLE receipts ADD COLUMN debtor TEXT;
