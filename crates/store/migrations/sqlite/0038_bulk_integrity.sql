-- (ente, debtor_fiscal_code) is answered by debt_positions_by_debtor
-- (debtor_fiscal_code, min_due_date, id), then the Ente checked on the few
-- positions of one debtor: one index fewer for every position written
-- (issue 20). PostgreSQL's foreign keys between enti, positions, options
-- and transfers become statement-level checks in the same migration; SQLite
-- keeps its foreign keys (see the PostgreSQL file).
DROP INDEX debt_positions_debtor;
