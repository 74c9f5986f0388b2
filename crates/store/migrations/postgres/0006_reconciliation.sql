-- Reconciliation: the PSPs' reporting flows (FdR), the treasury's
-- movements, and what matching found between them.

-- Every version of every flow is kept (a PSP may resend a flow with a
-- later dataOraFlusso until D+4); `current` marks the latest, which alone
-- takes part in matching. Natural key: (ente, flow_id, flow_date_time).
CREATE TABLE reporting_flows (
    ente TEXT NOT NULL REFERENCES enti(fiscal_code),
    flow_id TEXT NOT NULL,
    flow_date_time BIGINT NOT NULL,
    settlement_ref TEXT NOT NULL,
    settlement_date TEXT NOT NULL,
    psp_id TEXT NOT NULL,
    psp_name TEXT,
    bic TEXT,
    declared_count BIGINT NOT NULL,
    declared_total BIGINT NOT NULL,
    lines_total BIGINT NOT NULL,
    -- What the flow's lines contradict in its own header (count, total,
    -- repeated lines), in words; empty when nothing.
    problems TEXT NOT NULL,
    current BIGINT NOT NULL,
    received_at BIGINT NOT NULL,
    PRIMARY KEY (ente, flow_id, flow_date_time)
);
CREATE INDEX reporting_flows_current ON reporting_flows (ente, current, flow_id);

-- The lines of each flow version, in document order.
CREATE TABLE flow_payments (
    ente TEXT NOT NULL,
    flow_id TEXT NOT NULL,
    flow_date_time BIGINT NOT NULL,
    line BIGINT NOT NULL,
    iuv TEXT NOT NULL,
    iur TEXT NOT NULL,
    transfer_index BIGINT NOT NULL,
    amount BIGINT NOT NULL,
    outcome BIGINT NOT NULL,
    outcome_date TEXT NOT NULL,
    PRIMARY KEY (ente, flow_id, flow_date_time, line),
    FOREIGN KEY (ente, flow_id, flow_date_time)
        REFERENCES reporting_flows(ente, flow_id, flow_date_time) ON DELETE CASCADE
);
CREATE INDEX flow_payments_iuv ON flow_payments (ente, iuv);

-- The treasury's movements, once each by the bank's own id (a journal
-- loaded twice changes nothing). `matched_*` is the latest matching run's
-- result for an open sospeso.
CREATE TABLE treasury_movements (
    ente TEXT NOT NULL REFERENCES enti(fiscal_code),
    movement_id TEXT NOT NULL,
    account TEXT NOT NULL,
    year BIGINT NOT NULL,
    direction TEXT NOT NULL,
    document TEXT NOT NULL,
    operation TEXT NOT NULL,
    document_number TEXT NOT NULL,
    amount BIGINT NOT NULL,
    booking_date TEXT NOT NULL,
    value_date TEXT,
    payer TEXT,
    causale TEXT NOT NULL,
    trn TEXT,
    end_to_end_id TEXT,
    imported_at BIGINT NOT NULL,
    matched_flow_id TEXT,
    match_method TEXT,
    match_status TEXT,
    PRIMARY KEY (ente, movement_id)
);
CREATE INDEX treasury_movements_flow ON treasury_movements (ente, matched_flow_id);

-- What the latest matching run found wrong, by (code, subject): a run
-- replaces the Ente's list, so a resolved anomaly disappears.
CREATE TABLE recon_anomalies (
    ente TEXT NOT NULL REFERENCES enti(fiscal_code),
    code TEXT NOT NULL,
    subject TEXT NOT NULL,
    detail TEXT NOT NULL,
    amount BIGINT,
    detected_at BIGINT NOT NULL,
    PRIMARY KEY (ente, code, subject)
);
