-- The transfers one reporting step moves to GPD's reported states: filled,
-- applied and emptied inside the step's transaction, so it is empty
-- between transactions. A table rather than a temporary one because a
-- step runs for every receipt, and creating a temporary table each time
-- is schema work on the connection.
CREATE TABLE reporting_work (
    ente TEXT NOT NULL,
    iuv TEXT NOT NULL,
    id_transfer BIGINT NOT NULL,
    position_id BIGINT NOT NULL,
    PRIMARY KEY (ente, iuv, id_transfer)
);
