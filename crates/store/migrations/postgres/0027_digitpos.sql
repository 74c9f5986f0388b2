-- DigitPOS (issue 18): the payment API other applications' portals call
-- with an Ente's API key.
--
-- `digitpos_idempotency`: every POST carries an Idempotency-Key; the first
-- request with a key claims it (state PENDING), runs, and stores its
-- answer (DONE, with the HTTP status and JSON body), so that the same key
-- with the same request (same `fingerprint`: SHA-256 of method, path and
-- canonical body) is answered again without doing anything twice. Keys
-- are per Ente and per caller (`caller`: the API key's id as the audit log
-- names it), so two applications never collide on theirs. The effects
-- (a position, a Checkout cart at pagoPA) cannot share one transaction
-- with this row (Checkout is an HTTP call), hence claim, then complete.
CREATE TABLE digitpos_idempotency (
    ente TEXT NOT NULL REFERENCES enti(fiscal_code),
    caller TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    state TEXT NOT NULL,
    status BIGINT,
    body TEXT,
    created_at BIGINT NOT NULL,
    completed_at BIGINT,
    PRIMARY KEY (ente, caller, idempotency_key)
);
-- The purge of old keys scans by age.
CREATE INDEX digitpos_idempotency_age ON digitpos_idempotency (created_at);
-- The hosts an Ente allows as the callers' Checkout return URLs: a payer
-- is sent back only to a site the Ente vouched for, never to one an
-- attacker with a leaked key chose. Host names are stored lower-case.
CREATE TABLE digitpos_return_hosts (
    ente TEXT NOT NULL REFERENCES enti(fiscal_code),
    host TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    created_by TEXT NOT NULL,
    PRIMARY KEY (ente, host)
);
