-- The pagoPA Node interface: how each station reaches the Node, the
-- catalogue's pagoPA service id (for paDemandPaymentNotice), and receipts.

ALTER TABLE stations ADD COLUMN connection TEXT;
ALTER TABLE services ADD COLUMN pagopa_service_id TEXT;

-- Every receipt the Node sent, whole (raw XML) and parsed, once per
-- (Ente, receiptId). A multi-beneficiary payment gives one row per Ente
-- incasso serves. `anomaly` says why a receipt did not simply pay its
-- position (a double payment to refund, an unknown notice, ...).
CREATE TABLE receipts (
    ente TEXT NOT NULL,
    receipt_id TEXT NOT NULL,
    notice_number TEXT NOT NULL,
    iuv TEXT NOT NULL,
    owner_ente TEXT NOT NULL,
    position_id BIGINT,
    outcome TEXT NOT NULL,
    amount BIGINT NOT NULL,
    fee BIGINT,
    psp_id TEXT NOT NULL,
    psp_name TEXT NOT NULL,
    channel_id TEXT NOT NULL,
    payment_method TEXT,
    payment_date_time BIGINT,
    application_date TEXT,
    transfer_date TEXT,
    station_id TEXT NOT NULL,
    primitive TEXT NOT NULL,
    stand_in BIGINT NOT NULL,
    anomaly TEXT,
    refund_status TEXT,
    transfers TEXT NOT NULL,
    raw_xml TEXT NOT NULL,
    received_at BIGINT NOT NULL,
    PRIMARY KEY (ente, receipt_id)
);
CREATE INDEX receipts_iuv ON receipts (ente, iuv);
CREATE INDEX receipts_anomaly ON receipts (ente, anomaly);
