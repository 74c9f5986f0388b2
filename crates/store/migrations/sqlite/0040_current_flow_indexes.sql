-- The indexes over a flow's current versions become partial (WHERE
-- current = 1), which is all their queries ask for: the same indexes as
-- PostgreSQL's, where a key look-up planned on stale statistics went
-- through them (see the PostgreSQL script). SQLite uses a partial index
-- when the query says `current = 1`, as each of these queries does.
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
