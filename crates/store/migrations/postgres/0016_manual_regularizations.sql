-- Manual regularization (issue 16): a clerk ties an open sospeso to the
-- reporting flows it pays when automatic matching could not (no flow, or
-- one of another amount). A tie is kept across matching runs, which leave
-- its sospeso and its flows alone, until a clerk undoes it.
CREATE TABLE manual_regularizations (
    ente TEXT NOT NULL REFERENCES enti(fiscal_code),
    movement_id TEXT NOT NULL,
    -- Why, in the clerk's words: required.
    note TEXT NOT NULL,
    -- Who tied it, as the audit log names them.
    actor TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (ente, movement_id),
    FOREIGN KEY (ente, movement_id) REFERENCES treasury_movements(ente, movement_id)
);

-- The flows of each tie. A flow is tied to one sospeso at most: the key
-- says so, so two clerks tying the same flow at once cannot both succeed.
CREATE TABLE manual_regularization_flows (
    ente TEXT NOT NULL,
    flow_id TEXT NOT NULL,
    movement_id TEXT NOT NULL,
    PRIMARY KEY (ente, flow_id),
    FOREIGN KEY (ente, movement_id)
        REFERENCES manual_regularizations(ente, movement_id) ON DELETE CASCADE
);
CREATE INDEX manual_regularization_flows_movement
    ON manual_regularization_flows (ente, movement_id);

-- The back office's lists page on the server, sorted by the column a
-- clerk picks: each sort has an index ending in the row's key (the order's
-- tie-breaker), so that a page is read off the index and the reading stops
-- at the page's end, whatever the size of the table.
-- Receipts: received, paid, IUV (replacing the IUV's own index, which the
-- new one's prefix serves), notice number, debtor, amount; and the
-- receipts of a debtor's positions.
DROP INDEX receipts_iuv;
CREATE INDEX receipts_iuv_id ON receipts (ente, iuv, receipt_id);
CREATE INDEX receipts_received ON receipts (ente, received_at, receipt_id);
CREATE INDEX receipts_paid ON receipts (ente, payment_date_time, receipt_id);
CREATE INDEX receipts_notice ON receipts (ente, notice_number, receipt_id);
CREATE INDEX receipts_debtor ON receipts (ente, debtor, receipt_id);
CREATE INDEX receipts_amount ON receipts (ente, amount, receipt_id);
CREATE INDEX receipts_position ON receipts (position_id);

-- Flows (current versions): by date, settlement date, PSP, total, count.
CREATE INDEX reporting_flows_date ON reporting_flows (ente, current, flow_date_time, flow_id);
CREATE INDEX reporting_flows_settled ON reporting_flows (ente, current, settlement_date, flow_id);
CREATE INDEX reporting_flows_psp ON reporting_flows (ente, current, psp_id, flow_id);
CREATE INDEX reporting_flows_total ON reporting_flows (ente, current, lines_total, flow_id);
CREATE INDEX reporting_flows_count ON reporting_flows (ente, current, declared_count, flow_id);

-- Treasury movements: by booking date, number, amount, and by match
-- status (then booking date), which the status filter uses too.
CREATE INDEX treasury_movements_booking ON treasury_movements (ente, booking_date, movement_id);
CREATE INDEX treasury_movements_number ON treasury_movements (ente, document_number, movement_id);
CREATE INDEX treasury_movements_amount ON treasury_movements (ente, amount, movement_id);
CREATE INDEX treasury_movements_status
    ON treasury_movements (ente, match_status, booking_date, movement_id);
