-- What happened to a position, for whoever must be told (issue 18's
-- webhooks now, issue 19's App IO messages next): the outbox. A row is
-- written in the same transaction as the change it tells (a receipt that
-- paid an option: PAID; a published position invalidated or deleted:
-- CANCELLED; a paid option listed by a current reporting flow: REPORTED),
-- so none is lost in a crash and none tells of a change rolled back.
-- natural_key makes each one once (a receipt the Node sends twice is one
-- PAID). Ids grow in commit order (on PostgreSQL the writers of events
-- take a transaction lock first, see store::events), so a consumer that
-- reads past its cursor by increasing id never skips one.
-- payload: JSON with what a consumer needs (cents, receipt id, flow id...).
CREATE TABLE position_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    natural_key TEXT NOT NULL UNIQUE,
    ente TEXT NOT NULL REFERENCES enti(fiscal_code),
    position_id BIGINT NOT NULL,
    iupd TEXT NOT NULL,
    notice_number TEXT,
    iuv TEXT,
    kind TEXT NOT NULL,
    payload TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX position_events_position ON position_events (ente, position_id, id);

-- Each consumer's place in position_events: the last event it took.
CREATE TABLE event_cursors (
    consumer TEXT PRIMARY KEY,
    last_event BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- Where an Ente's events are POSTed. secret: the HMAC key, sealed at rest
-- (store::secrets); shown once, when registered. first_event: the last
-- event that existed at registration: only later ones are delivered.
-- active: 0/1; a disabled endpoint gets nothing new and sends nothing.
CREATE TABLE webhook_endpoints (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ente TEXT NOT NULL REFERENCES enti(fiscal_code),
    url TEXT NOT NULL,
    description TEXT NOT NULL,
    secret TEXT NOT NULL,
    active BIGINT NOT NULL,
    first_event BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    created_by TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (ente, url)
);

-- One event to one endpoint. status: PENDING (due at next_attempt_at),
-- SENDING (claimed by a worker until claimed_until: a worker that died
-- lets it go when that passes), DELIVERED (answered 2xx, or acknowledged
-- later through the ack door), FAILED (given up: see app::webhooks).
-- position_id orders them: a delivery waits while an older one for the
-- same endpoint and position is PENDING or SENDING.
CREATE TABLE webhook_deliveries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    endpoint_id BIGINT NOT NULL REFERENCES webhook_endpoints(id) ON DELETE CASCADE,
    event_id BIGINT NOT NULL REFERENCES position_events(id),
    position_id BIGINT NOT NULL,
    status TEXT NOT NULL,
    attempts BIGINT NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    claimed_until BIGINT,
    last_status BIGINT,
    last_answer TEXT,
    created_at BIGINT NOT NULL,
    delivered_at BIGINT,
    acked_at BIGINT,
    UNIQUE (endpoint_id, event_id)
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (status, next_attempt_at);
CREATE INDEX webhook_deliveries_order ON webhook_deliveries (endpoint_id, position_id, event_id);
