-- The Sportello Digitale's desks (issue 18): the counters of an Ente where
-- clerks issue positions and take payments, each with its own day and at
-- most one POS terminal (bound in pos_terminals). Named by a code the Ente
-- chooses (say 'SPORTELLO_02'): the POS gateway's `workstation` carries it.
CREATE TABLE desks (
    ente TEXT NOT NULL REFERENCES enti(fiscal_code),
    code TEXT NOT NULL,
    name TEXT NOT NULL,
    office TEXT,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (ente, code)
);
