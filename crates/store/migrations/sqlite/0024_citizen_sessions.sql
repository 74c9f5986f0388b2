-- The citizen portal's personal area (issue 17): a person signed in with
-- SPID or CIE. The cookie carries a random token whose SHA-256 is the key
-- here, as for the back office's operators; the CSRF token of the area's
-- forms is bound to it. A session ends 15 minutes after its last use and
-- 8 hours after sign-in, whatever happens.
CREATE TABLE citizen_sessions (
    token_hash TEXT PRIMARY KEY,
    fiscal_code TEXT NOT NULL,
    name TEXT NOT NULL,
    csrf TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    last_seen BIGINT NOT NULL
);
CREATE INDEX citizen_sessions_by_age ON citizen_sessions (last_seen);

-- The Ente whose portal a sign-in started from, under the SHA-256 of the
-- request's state: every Ente's portal shares one callback, and the Ente
-- to go back to stays on the server (never in a URL the provider sees).
-- Taken out with the request, once.
CREATE TABLE citizen_sign_ins (
    state_hash TEXT PRIMARY KEY,
    ente TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX citizen_sign_ins_by_age ON citizen_sign_ins (created_at);

-- The bacheca: every position owed by one fiscal code, across the
-- intermediary's Enti (migration 0001's index leads with the Ente), by due
-- date; a person's rows are few, so any filter on them is cheap.
CREATE INDEX debt_positions_by_debtor ON debt_positions (debtor_fiscal_code, min_due_date, id);
