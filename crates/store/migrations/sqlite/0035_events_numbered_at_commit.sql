-- On PostgreSQL an event's id is now given at its transaction's commit, and
-- the final id replaces a key that deliveries and notifications reference,
-- hence these indexes (see the PostgreSQL migration). SQLite has one writer
-- at a time: its ids are in commit order already. The same indexes keep
-- both schemas alike.
CREATE INDEX webhook_deliveries_event ON webhook_deliveries (event_id);
CREATE INDEX notifications_event ON notifications (event_id);
