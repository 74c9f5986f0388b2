-- PosPA (issue 18): physical card terminals on an Ente's desks, and the
-- sessions in which a clerk sends one to five notices to a terminal
-- through pagoPA's POS gateway. Why each piece:
-- * a terminal belongs to one Ente and sits on at most one desk (the
--   gateway's `workstation`); its id is the PSP's, so it is unique across
--   Enti: another Ente can never push to it;
-- * a session is incasso's (id, a UUID of its own, known before the
--   gateway answers) and the gateway's (`gateway_session`, the id its
--   callback names); `state` is incasso's reading of it;
-- * a notice held by a session that may still pay it has `open = 1`: the
--   partial unique index makes a second session on it impossible, on both
--   databases, whatever the race;
-- * a terminal runs one payment at a time: the same kind of index on the
--   sessions still waiting for the card.
CREATE TABLE pos_terminals (
    ente TEXT NOT NULL REFERENCES enti(fiscal_code),
    terminal_id TEXT NOT NULL,
    desk TEXT,
    description TEXT NOT NULL,
    -- ACTIVE or DISABLED: incasso's own use of it, not the gateway's status.
    status TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (ente, terminal_id),
    FOREIGN KEY (ente, desk) REFERENCES desks(ente, code)
);
CREATE UNIQUE INDEX pos_terminals_id ON pos_terminals (terminal_id);
CREATE UNIQUE INDEX pos_terminals_desk ON pos_terminals (ente, desk) WHERE desk IS NOT NULL;

CREATE TABLE pos_sessions (
    id TEXT PRIMARY KEY,
    ente TEXT NOT NULL REFERENCES enti(fiscal_code),
    terminal_id TEXT NOT NULL,
    desk TEXT NOT NULL,
    operator TEXT NOT NULL,
    correlation_id TEXT NOT NULL,
    gateway_session TEXT,
    state TEXT NOT NULL,
    -- The callback's outcome as received (AUTHORIZED, DECLINED, ...).
    outcome TEXT,
    outcome_at BIGINT,
    card_brand TEXT,
    card_last4 TEXT,
    card_bin TEXT,
    auth_code TEXT,
    rrn TEXT,
    -- Why it failed, in Italian, and a stable code.
    error_code TEXT,
    error TEXT,
    -- Something a person must look at (RECEIPT_MISSING, ...), and when.
    anomaly TEXT,
    anomaly_at BIGINT,
    total BIGINT NOT NULL,
    -- When the sweep looks at it next: the outcome's, then the receipt's deadline.
    deadline_at BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    FOREIGN KEY (ente, terminal_id) REFERENCES pos_terminals(ente, terminal_id)
);
CREATE UNIQUE INDEX pos_sessions_gateway ON pos_sessions (gateway_session) WHERE gateway_session IS NOT NULL;
CREATE UNIQUE INDEX pos_sessions_terminal_busy ON pos_sessions (ente, terminal_id)
    WHERE state IN ('OPENING', 'AWAITING_OUTCOME');
CREATE INDEX pos_sessions_desk ON pos_sessions (ente, desk, created_at);
CREATE INDEX pos_sessions_deadline ON pos_sessions (deadline_at) WHERE deadline_at IS NOT NULL;

CREATE TABLE pos_session_notices (
    session_id TEXT NOT NULL REFERENCES pos_sessions(id),
    ente TEXT NOT NULL,
    notice_number TEXT NOT NULL,
    iupd TEXT NOT NULL,
    amount BIGINT NOT NULL,
    -- 1 while the session may still pay it.
    open BIGINT NOT NULL,
    receipt_id TEXT,
    paid_at BIGINT,
    PRIMARY KEY (session_id, notice_number)
);
CREATE UNIQUE INDEX pos_session_notices_open ON pos_session_notices (ente, notice_number) WHERE open = 1;
CREATE INDEX pos_session_notices_notice ON pos_session_notices (ente, notice_number);
