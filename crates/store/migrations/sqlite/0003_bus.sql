-- Digit BUS: where a position came from, and the supplies (forniture).

ALTER TABLE debt_positions ADD COLUMN origin TEXT;
CREATE INDEX debt_positions_origin ON debt_positions (ente, origin);

-- One row per supply file received. A file whose rows were written is
-- `accepted`; the same file (by hash) is then refused for that Ente.
CREATE TABLE supplies (
    id INTEGER PRIMARY KEY,
    ente TEXT NOT NULL,
    layout TEXT NOT NULL,
    file_name TEXT NOT NULL,
    file_hash TEXT NOT NULL,
    size_bytes BIGINT NOT NULL,
    status TEXT NOT NULL,
    accepted BIGINT NOT NULL,
    rows_read BIGINT NOT NULL,
    rows_loaded BIGINT NOT NULL,
    rows_rejected BIGINT NOT NULL,
    positions_created BIGINT NOT NULL,
    positions_updated BIGINT NOT NULL,
    positions_cancelled BIGINT NOT NULL,
    started_at BIGINT NOT NULL,
    finished_at BIGINT NOT NULL,
    message TEXT NOT NULL,
    outcome BLOB
);
CREATE UNIQUE INDEX supplies_accepted_hash ON supplies (ente, file_hash) WHERE accepted = 1;

CREATE TABLE supply_errors (
    supply_id BIGINT NOT NULL,
    line BIGINT NOT NULL,
    field TEXT NOT NULL,
    value TEXT NOT NULL,
    code TEXT NOT NULL,
    message TEXT NOT NULL
);
CREATE INDEX supply_errors_supply ON supply_errors (supply_id, line);

-- Reporting back: how far each consumer has read the receipts of a layout.
CREATE TABLE export_cursors (
    ente TEXT NOT NULL,
    layout TEXT NOT NULL,
    consumer TEXT NOT NULL,
    last_received_at BIGINT NOT NULL,
    last_receipt_id TEXT NOT NULL,
    PRIMARY KEY (ente, layout, consumer)
);

-- An Ente's own layouts (TOML documents), versioned; the newest version of
-- a name is the one used, and it takes precedence over a built-in layout of
-- the same name.
CREATE TABLE layouts (
    ente TEXT NOT NULL,
    name TEXT NOT NULL,
    version BIGINT NOT NULL,
    definition TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (ente, name, version)
);
