-- A spontaneous service's form, defined in the back office: the JSON of
-- incasso_core::form::FormDef. `updated_at` is its version: an editor
-- saves only over the version it read, so two clerks never overwrite each
-- other unseen.
CREATE TABLE service_forms (
    ente TEXT NOT NULL,
    service_code TEXT NOT NULL,
    definition TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    updated_by TEXT NOT NULL,
    PRIMARY KEY (ente, service_code),
    FOREIGN KEY (ente, service_code) REFERENCES services (ente, code)
);
-- A spontaneous payment started from the portal. `request_id` is the
-- one-time token of the form the citizen filled in: a double submit (or a
-- retry) finds its row and the position already made (`iupd`), never a
-- second one. `state`: OPEN until paid (PAID) or, abandoned, cancelled by
-- the job (CANCELLED). `node_requested_at`: the last time the Node asked
-- to be paid for it (paGetPayment), so that the job never cancels one a
-- PSP is paying. `cart_id`: the portal cart it went to Checkout in.
CREATE TABLE spontaneous_requests (
    ente TEXT NOT NULL REFERENCES enti(fiscal_code),
    request_id TEXT NOT NULL,
    service_code TEXT NOT NULL,
    iupd TEXT NOT NULL,
    cart_id TEXT,
    state TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    node_requested_at BIGINT,
    closed_at BIGINT,
    PRIMARY KEY (ente, request_id),
    UNIQUE (ente, iupd)
);
-- The job's scan: the open ones, oldest first.
CREATE INDEX spontaneous_requests_open ON spontaneous_requests (state, created_at);
