-- The back office's archive of positions (issue 16): each position's
-- catalogue service and office (codes; NULL when none is known), and the
-- indexes that let every search answer its first page without reading the
-- Ente's whole table. A search either starts from the index of its most
-- selective filter (a few thousand candidates at most) or walks the index
-- of its sort order and stops at the page's end; see
-- store::positions::search_positions.

ALTER TABLE debt_positions ADD COLUMN service_code TEXT;
ALTER TABLE debt_positions ADD COLUMN office_code TEXT;

-- Newest first (the default order): ids grow with insertion.
CREATE INDEX debt_positions_newest ON debt_positions (ente, id);
-- By due date (the sort "scadenza").
CREATE INDEX debt_positions_due ON debt_positions (ente, min_due_date, id);
-- By the debtor's name, upper case: a name search is a range of this
-- index (the prefix typed), never a scan. Bytewise ("C"), as SQLite
-- compares, so that a prefix's range holds exactly the names that start
-- with it whatever the database's collation.
CREATE INDEX debt_positions_name ON debt_positions (ente, (UPPER(debtor_name) COLLATE "C"), id);
CREATE INDEX debt_positions_service ON debt_positions (ente, service_code, id);
-- By office, and by office and service together: an office operator's
-- search of a service counts only what their offices hold of it.
CREATE INDEX debt_positions_office ON debt_positions (ente, office_code, service_code, id);
-- Positions with an option due in a range of days.
CREATE INDEX payment_options_due ON payment_options (ente, due_date, position_id);
-- A position's history in the audit log.
CREATE INDEX audit_log_by_object ON audit_log (ente, object, id);
