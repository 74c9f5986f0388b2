-- Which matched sospesi each consumer of a regularization export has been
-- given: every matched sospeso once per consumer, including one that
-- matched only when its flow arrived late.
CREATE TABLE regularization_exports (
    ente TEXT NOT NULL REFERENCES enti(fiscal_code),
    layout TEXT NOT NULL,
    consumer TEXT NOT NULL,
    movement_id TEXT NOT NULL,
    exported_at BIGINT NOT NULL,
    PRIMARY KEY (ente, layout, consumer, movement_id)
);
