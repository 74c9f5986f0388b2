-- incasso schema, SQLite dialect. Kept column-for-column identical to
-- migrations/postgres/0001_init.sql: integers, money (cents), flags (0/1) and
-- instants (epoch microseconds, UTC) are BIGINT; codes and JSON are TEXT.

CREATE TABLE enti (
    fiscal_code TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    ipa_code TEXT,
    iban TEXT,
    postal_iban TEXT,
    cbill_code TEXT,
    email TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE offices (
    ente TEXT NOT NULL REFERENCES enti(fiscal_code),
    code TEXT NOT NULL,
    name TEXT NOT NULL,
    email TEXT,
    PRIMARY KEY (ente, code)
);

CREATE TABLE stations (
    ente TEXT NOT NULL REFERENCES enti(fiscal_code),
    station_id TEXT NOT NULL,
    broker_id TEXT NOT NULL,
    segregation_code BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (ente, station_id),
    UNIQUE (ente, segregation_code)
);

-- One row per (Ente, segregation code): the next 13-digit IUV base to hand
-- out. A single UPDATE ... RETURNING moves it, which both databases make
-- atomic across connections and processes.
CREATE TABLE iuv_sequences (
    ente TEXT NOT NULL,
    segregation_code BIGINT NOT NULL,
    next_value BIGINT NOT NULL,
    PRIMARY KEY (ente, segregation_code)
);

CREATE TABLE accertamenti (
    ente TEXT NOT NULL REFERENCES enti(fiscal_code),
    year BIGINT NOT NULL,
    code TEXT NOT NULL,
    description TEXT NOT NULL,
    chapter TEXT NOT NULL,
    article TEXT,
    active BIGINT NOT NULL,
    PRIMARY KEY (ente, year, code)
);

CREATE TABLE services (
    ente TEXT NOT NULL REFERENCES enti(fiscal_code),
    code TEXT NOT NULL,
    name TEXT NOT NULL,
    office_code TEXT,
    taxonomy_code TEXT NOT NULL,
    accertamento_year BIGINT,
    accertamento_code TEXT,
    iban TEXT,
    fixed_amount BIGINT,
    spontaneous BIGINT NOT NULL,
    active BIGINT NOT NULL,
    PRIMARY KEY (ente, code)
);

CREATE TABLE api_keys (
    key_id TEXT PRIMARY KEY,
    key_hash TEXT NOT NULL UNIQUE,
    ente TEXT REFERENCES enti(fiscal_code),
    scope TEXT NOT NULL,
    label TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT
);

CREATE TABLE debt_positions (
    id INTEGER PRIMARY KEY,
    ente TEXT NOT NULL REFERENCES enti(fiscal_code),
    iupd TEXT NOT NULL,
    debtor_type TEXT NOT NULL,
    debtor_fiscal_code TEXT NOT NULL,
    debtor_name TEXT NOT NULL,
    debtor_street TEXT,
    debtor_civic TEXT,
    debtor_postal_code TEXT,
    debtor_city TEXT,
    debtor_province TEXT,
    debtor_region TEXT,
    debtor_country TEXT,
    debtor_email TEXT,
    debtor_phone TEXT,
    company_name TEXT NOT NULL,
    office_name TEXT,
    validity_date BIGINT,
    switch_to_expired BIGINT NOT NULL,
    pay_stand_in BIGINT NOT NULL,
    status TEXT NOT NULL,
    min_due_date BIGINT NOT NULL,
    max_due_date BIGINT NOT NULL,
    inserted_at BIGINT NOT NULL,
    publish_date BIGINT,
    payment_date BIGINT,
    updated_at BIGINT NOT NULL,
    version BIGINT NOT NULL,
    UNIQUE (ente, iupd)
);
CREATE INDEX debt_positions_status ON debt_positions (ente, status, inserted_at);
CREATE INDEX debt_positions_debtor ON debt_positions (ente, debtor_fiscal_code);

-- Payment options and transfers are keyed by the Ente and the IUV, the key
-- pagoPA itself uses in receipts and reporting flows.
CREATE TABLE payment_options (
    ente TEXT NOT NULL,
    iuv TEXT NOT NULL,
    notice_number TEXT NOT NULL,
    position_id BIGINT NOT NULL REFERENCES debt_positions(id) ON DELETE CASCADE,
    option_index BIGINT NOT NULL,
    amount BIGINT NOT NULL,
    description TEXT NOT NULL,
    is_partial_payment BIGINT NOT NULL,
    due_date BIGINT NOT NULL,
    retention_date BIGINT,
    fee BIGINT NOT NULL,
    notification_fee BIGINT NOT NULL,
    status TEXT NOT NULL,
    payment_date BIGINT,
    reporting_date BIGINT,
    metadata TEXT NOT NULL,
    PRIMARY KEY (ente, iuv),
    UNIQUE (ente, notice_number)
);
CREATE INDEX payment_options_position ON payment_options (position_id);

CREATE TABLE transfers (
    ente TEXT NOT NULL,
    iuv TEXT NOT NULL,
    id_transfer BIGINT NOT NULL,
    amount BIGINT NOT NULL,
    organization_fiscal_code TEXT NOT NULL,
    company_name TEXT,
    remittance_information TEXT NOT NULL,
    category TEXT NOT NULL,
    iban TEXT,
    postal_iban TEXT,
    stamp TEXT,
    metadata TEXT NOT NULL,
    quotas TEXT NOT NULL,
    reported BIGINT NOT NULL,
    PRIMARY KEY (ente, iuv, id_transfer),
    FOREIGN KEY (ente, iuv) REFERENCES payment_options(ente, iuv) ON DELETE CASCADE
);

-- People who sign in to the back office and the counter desk. Passwords are
-- stored as Argon2id PHC strings only.
CREATE TABLE users (
    username TEXT PRIMARY KEY,
    ente TEXT REFERENCES enti(fiscal_code),
    password_hash TEXT NOT NULL,
    role TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
