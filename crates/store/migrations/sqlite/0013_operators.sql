-- The back office's people (issue 16). An operator signs in with a local
-- password (an Argon2 hash; none for one who only uses SPID/CIE) or with
-- SPID/CIE, matched by fiscal code. Rights: a role, an Ente (none for the
-- intermediary's administrator), the areas granted to an office operator
-- and the offices an office operator or counter clerk is limited to (JSON,
-- as core::access::Rights). Failed sign-ins count towards a wait that grows
-- and stops growing (core::access::lockout_secs).
CREATE TABLE operators (
    id INTEGER PRIMARY KEY,
    username TEXT NOT NULL UNIQUE,
    password_hash TEXT,
    fiscal_code TEXT UNIQUE,
    full_name TEXT NOT NULL,
    email TEXT,
    ente TEXT REFERENCES enti(fiscal_code),
    role TEXT NOT NULL,
    grants TEXT NOT NULL,
    offices TEXT NOT NULL,
    disabled BIGINT NOT NULL,
    must_change_password BIGINT NOT NULL,
    failed_attempts BIGINT NOT NULL,
    locked_until BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX operators_by_ente ON operators (ente, username);

-- Signed-in sessions, server-side: the cookie carries a random token whose
-- SHA-256 is the key here; the CSRF token of its forms is bound to it.
CREATE TABLE operator_sessions (
    token_hash TEXT PRIMARY KEY,
    operator_id BIGINT NOT NULL REFERENCES operators(id),
    csrf TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    last_seen BIGINT NOT NULL
);
CREATE INDEX operator_sessions_by_operator ON operator_sessions (operator_id);

-- The audit log (giornale degli eventi): every write by a person or a
-- program, who, when, what and how it ended. Only ever inserted into.
CREATE TABLE audit_log (
    id INTEGER PRIMARY KEY,
    at BIGINT NOT NULL,
    actor TEXT NOT NULL,
    ente TEXT,
    action TEXT NOT NULL,
    object TEXT NOT NULL,
    outcome TEXT NOT NULL,
    detail TEXT NOT NULL
);
CREATE INDEX audit_log_by_ente ON audit_log (ente, at);

-- The placeholder of back-office users, which nothing signed in with:
-- the operators above take its place.
DROP TABLE users;
