-- An event's place in the readers' order is a row of its own (issue 20).
--
-- Since 0035 the trigger that runs inside COMMIT renumbered the event's
-- row: a second version of a wide row, three index entries and two
-- foreign-key checks, all while holding the lock that every transaction
-- writing events waits for at its commit (`bench node`: 1.6 ms per
-- receipt on average). Now the trigger appends (seq, event_id) to the
-- narrow event_order table instead, one index entry, and the event's row
-- never changes.
--
-- position_events becomes a view: each committed event, with its place
-- (seq) as its id. Readers keep their queries, and the ids they see still
-- become visible in increasing order. Writers insert into
-- position_event_rows, whose own ids say nothing of that order. An event
-- has no place, so the view does not show it, until its transaction
-- commits. Deliveries and notifications reference an event by its place.
ALTER TABLE position_events RENAME TO position_event_rows;
DROP TRIGGER position_events_numbered ON position_event_rows;

CREATE TABLE event_order (
    seq BIGINT PRIMARY KEY,
    event_id BIGINT NOT NULL
);
INSERT INTO event_order (seq, event_id) SELECT id, id FROM position_event_rows WHERE id > 0;
CREATE INDEX event_order_event ON event_order (event_id);

-- Row ids: positive again, past every id given so far.
ALTER SEQUENCE position_events_provisional RENAME TO position_event_rows_ids;
SELECT setval('position_event_rows_ids', COALESCE((SELECT MAX(id) FROM position_event_rows), 0) + 1, false);
ALTER TABLE position_event_rows ALTER COLUMN id SET DEFAULT nextval('position_event_rows_ids');

-- 7597118891620527941 is store::events::EVENTS_LOCK ("incassoE"), as in 0035.
CREATE OR REPLACE FUNCTION position_event_numbered() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(7597118891620527941);
    INSERT INTO event_order (seq, event_id) VALUES (nextval('position_events_numbers'), NEW.id);
    RETURN NULL;
END
$$;

CREATE CONSTRAINT TRIGGER position_event_rows_ordered AFTER INSERT ON position_event_rows
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW
    EXECUTE FUNCTION position_event_numbered();

CREATE VIEW position_events AS
    SELECT o.seq AS id, r.natural_key, r.ente, r.position_id, r.iupd, r.notice_number, r.iuv,
        r.kind, r.payload, r.created_at
    FROM event_order o JOIN position_event_rows r ON r.id = o.event_id;

ALTER TABLE webhook_deliveries DROP CONSTRAINT webhook_deliveries_event_id_fkey;
ALTER TABLE webhook_deliveries ADD CONSTRAINT webhook_deliveries_event_id_fkey
    FOREIGN KEY (event_id) REFERENCES event_order (seq);
ALTER TABLE notifications DROP CONSTRAINT notifications_event_id_fkey;
ALTER TABLE notifications ADD CONSTRAINT notifications_event_id_fkey
    FOREIGN KEY (event_id) REFERENCES event_order (seq);
