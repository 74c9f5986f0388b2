-- The indexes over a flow's current versions become partial (WHERE
-- current = 1), which is all their queries ask for.
--
-- Why: `reporting_flows_current` was (ente, current, flow_id). A flow's
-- intake looks its versions up by (ente, flow_id), and the foreign key of
-- flow_payments checks (ente, flow_id, flow_date_time). Planned while the
-- table was still small, before autovacuum's first sample, both chose that
-- index over the primary key: with `current` unbound between its two
-- columns, each look-up then read every entry of the Ente. A year's flows
-- taken in at once slowed down as the table grew, 66 to 128 s against 23 s
-- (`bench recon --database-url`, stop 39). Partial, these indexes cannot
-- serve a look-up that does not say `current = 1`, and the primary key is
-- the only choice left.
DROP INDEX reporting_flows_current;
CREATE INDEX reporting_flows_current ON reporting_flows (ente, flow_id) WHERE current = 1;
DROP INDEX reporting_flows_date;
CREATE INDEX reporting_flows_date ON reporting_flows (ente, flow_date_time, flow_id) WHERE current = 1;
DROP INDEX reporting_flows_settled;
CREATE INDEX reporting_flows_settled ON reporting_flows (ente, settlement_date, flow_id) WHERE current = 1;
DROP INDEX reporting_flows_psp;
CREATE INDEX reporting_flows_psp ON reporting_flows (ente, psp_id, flow_id) WHERE current = 1;
DROP INDEX reporting_flows_total;
CREATE INDEX reporting_flows_total ON reporting_flows (ente, lines_total, flow_id) WHERE current = 1;
DROP INDEX reporting_flows_count;
CREATE INDEX reporting_flows_count ON reporting_flows (ente, declared_count, flow_id) WHERE current = 1;
