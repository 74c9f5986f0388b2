-- E-mail waiting to be sent, and what became of it. One row per message,
-- named by its natural key (for a receipt: 'receipt:{ente}:{receiptId}'),
-- so a receipt sent again by the Node never mails the payer twice.
-- status: PENDING (due at next_attempt_at), SENDING (claimed by a worker
-- until claimed_until: a worker that died lets it go when that passes),
-- SENT, or FAILED (a permanent refusal, or too many attempts: never
-- retried). last_error keeps the SMTP server's last answer.
CREATE TABLE mail_outbox (
    id INTEGER PRIMARY KEY,
    natural_key TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    ente TEXT NOT NULL REFERENCES enti(fiscal_code),
    reference TEXT NOT NULL,
    recipient TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    claimed_until BIGINT,
    last_error TEXT,
    created_at BIGINT NOT NULL,
    sent_at BIGINT
);
CREATE INDEX mail_outbox_due ON mail_outbox (status, next_attempt_at);
CREATE INDEX mail_outbox_ente ON mail_outbox (ente, created_at);
