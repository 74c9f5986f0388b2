-- An event's place in the readers' order is a row of its own (issue 20):
-- see the PostgreSQL migration, where it spares the commit of every
-- transaction writing events a rewrite of the event's row.
--
-- SQLite has one writer at a time, so an event's row id is its place
-- already: a plain trigger copies it. The same tables and view keep both
-- schemas alike, and the readers' queries the same. SQLite moved the
-- references of deliveries and notifications to position_event_rows with
-- the rename, where the ids are the same.
ALTER TABLE position_events RENAME TO position_event_rows;

CREATE TABLE event_order (
    seq INTEGER PRIMARY KEY,
    event_id INTEGER NOT NULL
);
INSERT INTO event_order (seq, event_id) SELECT id, id FROM position_event_rows;
CREATE INDEX event_order_event ON event_order (event_id);

CREATE TRIGGER position_event_rows_ordered AFTER INSERT ON position_event_rows
BEGIN
    INSERT INTO event_order (seq, event_id) VALUES (NEW.id, NEW.id);
END;

CREATE VIEW position_events AS
    SELECT o.seq AS id, r.natural_key, r.ente, r.position_id, r.iupd, r.notice_number, r.iuv,
        r.kind, r.payload, r.created_at
    FROM event_order o JOIN position_event_rows r ON r.id = o.event_id;
