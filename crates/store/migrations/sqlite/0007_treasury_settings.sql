-- Each Ente's treasury service settings, as OPI headers need them (the
-- bank's ABI, the Ente's IPA office and SIOPE codes, the A2A channels):
-- one JSON document per Ente, read whole.
CREATE TABLE treasury_settings (
    ente TEXT PRIMARY KEY REFERENCES enti(fiscal_code),
    settings TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);
