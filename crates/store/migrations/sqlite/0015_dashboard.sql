-- The back office's dashboard (issue 16). Its figures sum every payment
-- option of the Ente (a million of them take seconds to add up), so they
-- are summed once into dashboard_totals and read from there: one row per
-- hour of due date, service, office, accertamento ('' for an option's
-- whole amount, 'year/code' for its quotas) and paid or not, with the
-- amount in cents and how many options or quotas it sums. A snapshot is
-- redone when the Ente's positions changed since (a new id, or a later
-- updated_at than the snapshot saw): dashboard_snapshots keeps what it saw.
-- Whether an unpaid option is overdue is decided when the page is read,
-- from its hour, so a snapshot never goes stale by the clock alone.

CREATE TABLE dashboard_totals (
    ente TEXT NOT NULL,
    due_hour BIGINT NOT NULL,
    service_code TEXT NOT NULL,
    office_code TEXT NOT NULL,
    accertamento TEXT NOT NULL,
    paid BIGINT NOT NULL,
    amount BIGINT NOT NULL,
    items BIGINT NOT NULL,
    PRIMARY KEY (ente, due_hour, service_code, office_code, accertamento, paid)
);

CREATE TABLE dashboard_snapshots (
    ente TEXT PRIMARY KEY,
    computed_at BIGINT NOT NULL,
    last_id BIGINT NOT NULL,
    last_update BIGINT NOT NULL,
    millis BIGINT NOT NULL
);

-- The newest change to an Ente's positions, without reading them.
CREATE INDEX debt_positions_updated ON debt_positions (ente, updated_at);
-- The supplies that wait for a person, newest first.
CREATE INDEX supplies_by_status ON supplies (ente, status, id);
