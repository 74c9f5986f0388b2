-- Notifications, triggers and channels (issue 19).
--
-- notify_settings.time_to_live: the seconds App IO keeps trying to deliver
-- a service's messages (IO's TimeToLiveSeconds, 3600-604800), sent with
-- each message; NULL: not sent (IO's default, 3600). A message incasso
-- could not send within it (or within a week when NULL) is not sent late:
-- it is recorded as expired.
ALTER TABLE notify_settings ADD COLUMN time_to_live BIGINT;

-- debt_positions.notify_invite: what a supply's row said of its App IO
-- invitation (a layout's notify.invite column): 1 asks for it, 0 asks for
-- none, NULL leaves it to the service's "invite on publication". Read when
-- the supply commits, which writes the PUBLISHED events.
ALTER TABLE debt_positions ADD COLUMN notify_invite BIGINT;

-- What the withdrawal of a deleted position needs: the position as it was
-- (JSON), kept by the deleting transaction when its service tells its
-- citizens, because the position's rows are gone with it.
CREATE TABLE notify_gone (
    position_id BIGINT PRIMARY KEY,
    ente TEXT NOT NULL,
    service_code TEXT NOT NULL,
    debtor_fiscal_code TEXT NOT NULL,
    position_json TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

-- An Ente's own e-mail texts: per kind (INVITATION, REMINDER, WITHDRAWAL,
-- PAID, and RECEIPT for the citizen portal's receipt), a subject and a
-- plain-text body with the notifications' placeholders, checked when
-- saved. Without one, incasso's default text is used.
CREATE TABLE email_templates (
    ente TEXT NOT NULL REFERENCES enti(fiscal_code),
    kind TEXT NOT NULL,
    subject TEXT NOT NULL,
    body TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    updated_by TEXT NOT NULL,
    PRIMARY KEY (ente, kind)
);
