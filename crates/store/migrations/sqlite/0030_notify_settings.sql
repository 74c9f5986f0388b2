-- Telling citizens about their positions (issue 19): per catalogue
-- service, whether and how. io_api_key: the IO service's subscription key,
-- sealed at rest (store::secrets), never shown back in full; NULL: no IO
-- (e-mail only). enabled 0/1: nothing is told at all when 0.
-- invite_on_publish 0/1: a published position of the service writes a
-- PUBLISHED event (the invitation's trigger). reminder_days: the daily job
-- writes DUE_SOON this many days before an unpaid option's due date; NULL:
-- no reminders. german 0/1: German templates too (Italian always).
-- io_not_before: IO answered 429 for this service's key; its messages
-- wait until then, the other services' do not.
CREATE TABLE notify_settings (
    ente TEXT NOT NULL REFERENCES enti(fiscal_code),
    service_code TEXT NOT NULL,
    io_api_key TEXT,
    enabled BIGINT NOT NULL,
    invite_on_publish BIGINT NOT NULL,
    reminder_days BIGINT,
    german BIGINT NOT NULL,
    io_not_before BIGINT,
    updated_at BIGINT NOT NULL,
    updated_by TEXT NOT NULL,
    PRIMARY KEY (ente, service_code)
);

-- A service's own text for a kind of message (INVITATION, REMINDER,
-- WITHDRAWAL, PAID) in a language (it, de), checked when saved (subject
-- 10-120 characters, markdown 80-10000, known placeholders only); without
-- one, incasso's default text is used.
CREATE TABLE notify_templates (
    ente TEXT NOT NULL,
    service_code TEXT NOT NULL,
    kind TEXT NOT NULL,
    language TEXT NOT NULL,
    subject TEXT NOT NULL,
    markdown TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    updated_by TEXT NOT NULL,
    PRIMARY KEY (ente, service_code, kind, language),
    FOREIGN KEY (ente, service_code) REFERENCES notify_settings(ente, service_code)
        ON DELETE CASCADE
);
