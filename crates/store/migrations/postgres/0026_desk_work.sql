-- Sportello Digitale (issue 18): what a desk did. Each position issued at a
-- desk is recorded with the desk, the clerk and the instant (the desk's day
-- lists it, the clerk's reprint finds it), and each closed day keeps its
-- report as it was at closing, frozen: a receipt that arrives later, or a
-- position issued after the closing, never changes a closed day. Keyed so
-- that issuing twice (a double click) or closing twice records once.
CREATE TABLE desk_positions (
    ente TEXT NOT NULL,
    desk TEXT NOT NULL,
    iupd TEXT NOT NULL,
    notice_number TEXT NOT NULL,
    service_code TEXT NOT NULL,
    amount BIGINT NOT NULL,
    operator TEXT NOT NULL,
    day TEXT NOT NULL,
    issued_at BIGINT NOT NULL,
    PRIMARY KEY (ente, iupd),
    FOREIGN KEY (ente, desk) REFERENCES desks(ente, code)
);
CREATE INDEX desk_positions_day ON desk_positions (ente, desk, day, issued_at);
CREATE INDEX desk_positions_notice ON desk_positions (ente, notice_number);

CREATE TABLE desk_days (
    ente TEXT NOT NULL,
    desk TEXT NOT NULL,
    day TEXT NOT NULL,
    closed_by TEXT NOT NULL,
    closed_at BIGINT NOT NULL,
    issued_count BIGINT NOT NULL,
    issued_total BIGINT NOT NULL,
    collected_count BIGINT NOT NULL,
    collected_total BIGINT NOT NULL,
    report TEXT NOT NULL,
    PRIMARY KEY (ente, desk, day),
    FOREIGN KEY (ente, desk) REFERENCES desks(ente, code)
);
