-- An event's id is given at its transaction's commit (issue 20).
--
-- Consumers read position_events by increasing id past a cursor, so ids
-- must become visible in increasing order (store::events). Until now every
-- writer of events took one advisory lock at its insert, and held it across
-- the round trip to its COMMIT: the receipts of the Node queued behind one
-- another's network and scheduling waits (3.4 ms on average, `bench node`).
--
-- Now a row is inserted with a provisional negative id, and a deferred
-- trigger, which PostgreSQL runs inside COMMIT, takes the same lock and
-- gives the row its final id from position_events_numbers. The lock is
-- held from there to the end of the commit only: no client round trip.
-- The trigger fires row by row in insertion order, so a transaction's
-- events keep their order (a PAID before the REPORTED it causes).
-- 7597118891620527941 is store::events::EVENTS_LOCK ("incassoE").
--
-- The final id replaces a key that webhook_deliveries and notifications
-- reference: PostgreSQL checks them on each renumbering, hence their
-- indexes by event. SQLite has one writer at a time and keeps its ids.
ALTER TABLE position_events ALTER COLUMN id DROP IDENTITY;
CREATE SEQUENCE position_events_numbers AS BIGINT OWNED BY position_events.id;
SELECT setval('position_events_numbers', COALESCE((SELECT MAX(id) FROM position_events), 0) + 1, false);
CREATE SEQUENCE position_events_provisional AS BIGINT OWNED BY position_events.id;
ALTER TABLE position_events ALTER COLUMN id SET DEFAULT -nextval('position_events_provisional');

CREATE FUNCTION position_event_numbered() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(7597118891620527941);
    UPDATE position_events SET id = nextval('position_events_numbers') WHERE id = NEW.id;
    RETURN NULL;
END
$$;

CREATE CONSTRAINT TRIGGER position_events_numbered AFTER INSERT ON position_events
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW WHEN (NEW.id < 0)
    EXECUTE FUNCTION position_event_numbered();

CREATE INDEX webhook_deliveries_event ON webhook_deliveries (event_id);
CREATE INDEX notifications_event ON notifications (event_id);
