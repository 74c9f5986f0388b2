-- Payment notices: the supply a position came with (to print a supply's
-- notices in bulk), and each Ente's logo.

-- No index: only bulk printing reads it, which scans an Ente's positions
-- once, and every bulk insert would pay for the index.
ALTER TABLE debt_positions ADD COLUMN supply_id BIGINT;

CREATE TABLE ente_logos (
    ente TEXT PRIMARY KEY,
    content_type TEXT NOT NULL,
    data BLOB NOT NULL,
    updated_at BIGINT NOT NULL
);
