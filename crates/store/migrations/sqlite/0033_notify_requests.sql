-- Messages asked for by a person (the back office's "send" after its
-- preview) or an application (the API's POST, under its Idempotency-Key):
-- one row per request token, written in the transaction that writes the
-- request's position events. A confirm sent twice (a double click, a
-- resubmitted form, a retried call) finds its token here and sends
-- nothing more. target: what was asked ('position:{iupd}' or
-- 'supply:{id}'), so one token reused for another target is refused.
-- requested: how many positions were told.
CREATE TABLE notify_requests (
    ente TEXT NOT NULL REFERENCES enti(fiscal_code),
    token TEXT NOT NULL,
    target TEXT NOT NULL,
    requested BIGINT NOT NULL,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (ente, token)
);
