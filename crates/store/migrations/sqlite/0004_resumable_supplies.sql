-- Supplies that resume: a supply row exists from the start of its load
-- (status LOADING), so its status can be read from any process, and a
-- supply whose layout loads the valid rows commits as it goes, recording
-- in `resume_line` the last line of the file whose rows are committed.
-- A load killed halfway resumes from there when the same file is sent
-- again.

ALTER TABLE supplies ADD COLUMN resume_line BIGINT NOT NULL DEFAULT 0;
CREATE INDEX supplies_hash ON supplies (ente, file_hash);

-- Nothing reads positions by origin alone (the reporting export reaches
-- them through their receipts), and the index cost every bulk insert a
-- B-tree update.
DROP INDEX debt_positions_origin;
