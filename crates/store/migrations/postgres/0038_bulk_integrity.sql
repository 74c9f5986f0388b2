-- The links between enti, positions, options and transfers are checked once
-- per statement instead of once per row (issue 20).
--
-- A foreign key checks each inserted row with a query of its own. A supply of
-- 1,000,000 rows (one position, one option, one transfer each) spent about
-- 14 s of its PostgreSQL time in those checks, a third of it, on the one
-- backend that writes the supply. The same checks made set-wise, once per
-- statement over the statement's new rows (a COPY of 500 positions is one
-- statement), cost about 3 s. What the three foreign keys did, the triggers
-- below do:
--
--   * an insert whose parent is missing fails with SQLSTATE 23503
--     (foreign_key_violation), the foreign key's own code;
--   * deleting a position deletes its options, deleting an option its
--     transfers (ON DELETE CASCADE), at the end of the statement;
--   * an Ente with positions cannot be deleted (NO ACTION);
--   * the key columns of either side never change: an UPDATE that would
--     change one fails (incasso never changes them; a foreign key would let
--     a key move to another existing parent, these refuse it outright).
--
-- What a foreign key also did and these do not: lock the parent row while
-- checking it. No write needs that lock from here: options and transfers are
-- written only by the transaction that inserts their position or holds its
-- row lock (FOR UPDATE), and that lock is what a deletion takes first.
--
-- SQLite keeps its foreign keys: its checks cost a supply nothing measurable,
-- and its test runs keep proving that no writer leaves an orphan.
ALTER TABLE debt_positions DROP CONSTRAINT debt_positions_ente_fkey;
ALTER TABLE payment_options DROP CONSTRAINT payment_options_position_id_fkey;
ALTER TABLE transfers DROP CONSTRAINT transfers_ente_iuv_fkey;

-- A statement of a few rows (a GPD create) checks each row by its parent's
-- key, as a foreign key does, with a plan kept for the session: an index
-- probe whatever the table's size. A bigger one (a supply's COPY of 500
-- positions) checks its rows in one query, planned for the rows it has: a
-- plan kept from the first statement of a session, when the tables were
-- small, would scan a parent table that has since grown (the transfers'
-- check took 2.5 ms per single create that way, against 0.4 for the
-- foreign key).
CREATE FUNCTION positions_have_their_ente() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    r record;
    orphans boolean;
BEGIN
    IF (SELECT count(*) FROM inserted) <= 32 THEN
        FOR r IN SELECT ente FROM inserted LOOP
            PERFORM 1 FROM enti WHERE fiscal_code = r.ente;
            orphans := NOT FOUND;
            EXIT WHEN orphans;
        END LOOP;
    ELSE
        EXECUTE 'SELECT EXISTS (SELECT 1 FROM inserted n
                  WHERE NOT EXISTS (SELECT 1 FROM enti e WHERE e.fiscal_code = n.ente))'
            INTO orphans;
    END IF;
    IF orphans THEN
        RAISE EXCEPTION 'debt_positions: ente non censito'
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER debt_positions_ente AFTER INSERT ON debt_positions
    REFERENCING NEW TABLE AS inserted FOR EACH STATEMENT
    EXECUTE FUNCTION positions_have_their_ente();

CREATE FUNCTION options_have_their_position() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    r record;
    orphans boolean;
BEGIN
    IF (SELECT count(*) FROM inserted) <= 32 THEN
        FOR r IN SELECT position_id FROM inserted LOOP
            PERFORM 1 FROM debt_positions WHERE id = r.position_id;
            orphans := NOT FOUND;
            EXIT WHEN orphans;
        END LOOP;
    ELSE
        EXECUTE 'SELECT EXISTS (SELECT 1 FROM inserted n
                  WHERE NOT EXISTS (SELECT 1 FROM debt_positions p WHERE p.id = n.position_id))'
            INTO orphans;
    END IF;
    IF orphans THEN
        RAISE EXCEPTION 'payment_options: posizione inesistente'
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER payment_options_position AFTER INSERT ON payment_options
    REFERENCING NEW TABLE AS inserted FOR EACH STATEMENT
    EXECUTE FUNCTION options_have_their_position();

CREATE FUNCTION transfers_have_their_option() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    r record;
    orphans boolean;
BEGIN
    IF (SELECT count(*) FROM inserted) <= 32 THEN
        FOR r IN SELECT ente, iuv FROM inserted LOOP
            PERFORM 1 FROM payment_options WHERE ente = r.ente AND iuv = r.iuv;
            orphans := NOT FOUND;
            EXIT WHEN orphans;
        END LOOP;
    ELSE
        EXECUTE 'SELECT EXISTS (SELECT 1 FROM inserted n
                  WHERE NOT EXISTS (SELECT 1 FROM payment_options o
                                    WHERE o.ente = n.ente AND o.iuv = n.iuv))'
            INTO orphans;
    END IF;
    IF orphans THEN
        RAISE EXCEPTION 'transfers: opzione di pagamento inesistente'
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER transfers_option AFTER INSERT ON transfers
    REFERENCING NEW TABLE AS inserted FOR EACH STATEMENT
    EXECUTE FUNCTION transfers_have_their_option();

-- Deletions are rare: planned each time, for the rows they remove.
CREATE FUNCTION positions_take_their_options() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE 'DELETE FROM payment_options o USING removed r WHERE o.position_id = r.id';
    RETURN NULL;
END
$$;
CREATE TRIGGER debt_positions_cascade AFTER DELETE ON debt_positions
    REFERENCING OLD TABLE AS removed FOR EACH STATEMENT
    EXECUTE FUNCTION positions_take_their_options();

CREATE FUNCTION options_take_their_transfers() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE 'DELETE FROM transfers t USING removed r WHERE t.ente = r.ente AND t.iuv = r.iuv';
    RETURN NULL;
END
$$;
CREATE TRIGGER payment_options_cascade AFTER DELETE ON payment_options
    REFERENCING OLD TABLE AS removed FOR EACH STATEMENT
    EXECUTE FUNCTION options_take_their_transfers();

CREATE FUNCTION enti_keep_their_positions() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    kept boolean;
BEGIN
    EXECUTE 'SELECT EXISTS (SELECT 1 FROM removed r JOIN debt_positions p ON p.ente = r.fiscal_code)'
        INTO kept;
    IF kept THEN
        RAISE EXCEPTION 'enti: l''ente ha posizioni debitorie'
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER enti_positions AFTER DELETE ON enti
    REFERENCING OLD TABLE AS removed FOR EACH STATEMENT
    EXECUTE FUNCTION enti_keep_their_positions();

-- Row triggers, but the WHEN clause is evaluated without calling the
-- function: an UPDATE that keeps the keys (a receipt paying an option) pays
-- a comparison, nothing more.
CREATE FUNCTION keys_never_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '%: le chiavi di una riga non cambiano', TG_TABLE_NAME
        USING ERRCODE = 'foreign_key_violation';
END
$$;
CREATE TRIGGER enti_keys BEFORE UPDATE ON enti FOR EACH ROW
    WHEN (OLD.fiscal_code IS DISTINCT FROM NEW.fiscal_code)
    EXECUTE FUNCTION keys_never_change();
CREATE TRIGGER debt_positions_keys BEFORE UPDATE ON debt_positions FOR EACH ROW
    WHEN (OLD.id IS DISTINCT FROM NEW.id OR OLD.ente IS DISTINCT FROM NEW.ente)
    EXECUTE FUNCTION keys_never_change();
CREATE TRIGGER payment_options_keys BEFORE UPDATE ON payment_options FOR EACH ROW
    WHEN (OLD.ente IS DISTINCT FROM NEW.ente OR OLD.iuv IS DISTINCT FROM NEW.iuv
          OR OLD.position_id IS DISTINCT FROM NEW.position_id)
    EXECUTE FUNCTION keys_never_change();
CREATE TRIGGER transfers_keys BEFORE UPDATE ON transfers FOR EACH ROW
    WHEN (OLD.ente IS DISTINCT FROM NEW.ente OR OLD.iuv IS DISTINCT FROM NEW.iuv)
    EXECUTE FUNCTION keys_never_change();

-- (ente, debtor_fiscal_code) is answered by debt_positions_by_debtor
-- (debtor_fiscal_code, min_due_date, id), then the Ente checked on the few
-- positions of one debtor. Its random inserts cost a supply about 4.5 s per
-- 1,000,000 positions.
DROP INDEX debt_positions_debtor;
