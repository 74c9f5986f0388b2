-- The notification outbox (issue 19): a consumer of position_events
-- (cursor 'notify'). Each event of a service that tells its citizens
-- becomes one row per channel, named by natural_key ('{event}:IO',
-- '{event}:EMAIL'), so an event is handed on once whatever crashes.
-- kind: INVITATION, REMINDER, WITHDRAWAL, PAID. channel: IO or EMAIL.
-- recipient: the fiscal code (IO) or the address (EMAIL).
-- status: PENDING (due at next_attempt_at), SENDING (claimed until
-- claimed_until; a worker that died lets it go then), SENT, SKIPPED
-- (nothing to send, reason says why: no IO key, not on IO, already
-- paid...), FAILED (the dead letter: a permanent refusal or too many
-- attempts; a person may retry it). attempt_started_at is written, and
-- committed, before IO is called, the outcome right after: see
-- app::notify for the window in which a crash can send twice.
-- subject/body: the rendered text (kept for the back office and for the
-- e-mail, which the mail outbox sends).
CREATE TABLE notifications (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    natural_key TEXT NOT NULL UNIQUE,
    event_id BIGINT NOT NULL REFERENCES position_events(id),
    ente TEXT NOT NULL REFERENCES enti(fiscal_code),
    service_code TEXT NOT NULL,
    position_id BIGINT NOT NULL,
    iupd TEXT NOT NULL,
    notice_number TEXT,
    kind TEXT NOT NULL,
    channel TEXT NOT NULL,
    recipient TEXT,
    status TEXT NOT NULL,
    reason TEXT,
    attempts BIGINT NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    claimed_until BIGINT,
    attempt_started_at BIGINT,
    last_error TEXT,
    io_message_id TEXT,
    subject TEXT,
    body TEXT,
    created_at BIGINT NOT NULL,
    sent_at BIGINT
);
CREATE INDEX notifications_due ON notifications (status, next_attempt_at);
CREATE INDEX notifications_position ON notifications (ente, iupd, id);
CREATE INDEX notifications_order ON notifications (position_id, id);
