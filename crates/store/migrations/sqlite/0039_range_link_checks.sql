-- PostgreSQL only: its statement-level link checks (0038) first look over
-- the range of the statement's keys. SQLite keeps its foreign keys.
SELECT 1;
