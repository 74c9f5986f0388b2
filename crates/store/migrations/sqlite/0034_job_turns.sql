-- The scheduled jobs' turns, shared by every process on this database: a
-- job's round runs in the process that moves its due time forward (one
-- conditional UPDATE), so once per due time however many processes serve.
CREATE TABLE job_turns (
    job TEXT PRIMARY KEY,
    due_at BIGINT NOT NULL,
    taken_by TEXT,
    taken_at BIGINT
);
