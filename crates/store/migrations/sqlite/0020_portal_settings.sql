-- How an Ente's citizen portal looks and speaks, set in the back office:
-- the brand colour of its header (a #rrggbb that keeps white text
-- readable), and the languages offered besides Italian (",de,en,").
-- An Ente without a row gets the defaults: incasso's blue, Italian only.
CREATE TABLE portal_settings (
    ente TEXT PRIMARY KEY REFERENCES enti(fiscal_code),
    brand_colour TEXT NOT NULL,
    languages TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- The satisfaction ratings citizens leave at the end of a procedure
-- (Designers Italia C.SE.1.7): 1 to 5 stars, on which procedure, and an
-- optional remark, never who left it.
CREATE TABLE portal_ratings (
    id INTEGER PRIMARY KEY,
    ente TEXT NOT NULL REFERENCES enti(fiscal_code),
    procedure TEXT NOT NULL,
    stars INTEGER NOT NULL,
    remark TEXT,
    created_at BIGINT NOT NULL
);
CREATE INDEX portal_ratings_ente ON portal_ratings (ente, created_at);
