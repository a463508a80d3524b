-- The foreign keys of count_lines, the table a count fills in bulk, are
-- checked once per statement instead of once per row.
--
-- Why: a PostgreSQL foreign key checks every inserted row with a query of its
-- own (and locks the referenced row). Opening a count of 100,000 positions
-- inserts 100,000 lines and ran 600,000 such checks: 1.9 s of the insert's
-- 2.3 s (EXPLAIN ANALYZE, bench/README.md "Stocktake"). Here one query
-- per reference checks the statement's distinct keys and locks the referenced
-- rows FOR KEY SHARE, as a foreign key does, so a concurrent delete of one of
-- them waits for this transaction and then sees its rows.
--
-- scan_events keeps its foreign keys: it is also written one event at a time
-- (single scans), where the four dynamic queries here cost 1.1-1.7 ms
-- (measured, warm) against ~0.03 ms for four row checks; in batches of 500
-- they saved only 12 -> 8 ms.
--
-- The referenced tables refuse to delete a row still referenced (count
-- sessions cascade to their lines, as before), and their ids never change.
-- Violations raise SQLSTATE 23503 with the old constraint names, so errors
-- read and map as before.
--
-- What a foreign key does that these do not: checks under REPEATABLE READ or
-- SERIALIZABLE. A delete's check there could not see a reference committed
-- after its snapshot, so such deletes are refused outright; the service
-- deletes in READ COMMITTED (locations are the only ones it deletes).

-- TG_ARGV: (constraint, column, referenced table) per reference; the
-- referenced column is `id`. new_rows: the statement's inserted/updated rows.
CREATE FUNCTION check_references() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    i int := 0;
    wanted bigint;
    held bigint;
    missing text;
BEGIN
    PERFORM 1 FROM new_rows LIMIT 1;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    WHILE i < TG_NARGS LOOP
        EXECUTE format(
            'WITH keys AS (SELECT DISTINCT %1$I AS k FROM new_rows WHERE %1$I IS NOT NULL),
                  held AS (SELECT r.id FROM %2$I r WHERE r.id IN (SELECT k FROM keys) FOR KEY SHARE OF r)
             SELECT (SELECT count(*) FROM keys), (SELECT count(*) FROM held)',
            TG_ARGV[i + 1], TG_ARGV[i + 2])
        INTO wanted, held;
        IF held < wanted THEN
            EXECUTE format(
                'SELECT n.k::text FROM (SELECT DISTINCT %1$I AS k FROM new_rows WHERE %1$I IS NOT NULL) n
                 WHERE NOT EXISTS (SELECT 1 FROM %2$I r WHERE r.id = n.k) LIMIT 1',
                TG_ARGV[i + 1], TG_ARGV[i + 2])
            INTO missing;
            RAISE foreign_key_violation USING
                MESSAGE = format('insert or update on table "%s" violates foreign key constraint "%s"',
                                 TG_TABLE_NAME, TG_ARGV[i]),
                DETAIL = format('Key (%s)=(%s) is not present in table "%s".',
                                TG_ARGV[i + 1], coalesce(missing, 'deleted meanwhile'), TG_ARGV[i + 2]),
                CONSTRAINT = TG_ARGV[i], TABLE = TG_TABLE_NAME, SCHEMA = TG_TABLE_SCHEMA;
        END IF;
        i := i + 3;
    END LOOP;
    RETURN NULL;
END $$;

-- TG_ARGV: (constraint, referencing table, referencing column, 'restrict' or
-- 'cascade') per reference. old_rows: the statement's deleted rows.
CREATE FUNCTION check_referenced_delete() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    i int := 0;
    still text;
BEGIN
    PERFORM 1 FROM old_rows LIMIT 1;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        RAISE EXCEPTION 'deleting from % must run in READ COMMITTED: its references are checked per statement',
            TG_TABLE_NAME USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    WHILE i < TG_NARGS LOOP
        IF TG_ARGV[i + 3] = 'cascade' THEN
            EXECUTE format('DELETE FROM %1$I WHERE %2$I IN (SELECT id FROM old_rows)',
                           TG_ARGV[i + 1], TG_ARGV[i + 2]);
        ELSE
            EXECUTE format(
                'SELECT o.id::text FROM old_rows o WHERE EXISTS (SELECT 1 FROM %1$I c WHERE c.%2$I = o.id) LIMIT 1',
                TG_ARGV[i + 1], TG_ARGV[i + 2])
            INTO still;
            IF still IS NOT NULL THEN
                RAISE foreign_key_violation USING
                    MESSAGE = format('update or delete on table "%s" violates foreign key constraint "%s" on table "%s"',
                                     TG_TABLE_NAME, TG_ARGV[i], TG_ARGV[i + 1]),
                    DETAIL = format('Key (id)=(%s) is still referenced from table "%s".', still, TG_ARGV[i + 1]),
                    CONSTRAINT = TG_ARGV[i], TABLE = TG_ARGV[i + 1], SCHEMA = TG_TABLE_SCHEMA;
            END IF;
        END IF;
        i := i + 4;
    END LOOP;
    RETURN NULL;
END $$;

CREATE FUNCTION refuse_id_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE foreign_key_violation USING
        MESSAGE = format('the id of a row of %s never changes (rows of other tables refer to it)', TG_TABLE_NAME),
        TABLE = TG_TABLE_NAME, SCHEMA = TG_TABLE_SCHEMA;
END $$;

ALTER TABLE count_lines
    DROP CONSTRAINT count_lines_count_id_fkey,
    DROP CONSTRAINT count_lines_product_id_fkey,
    DROP CONSTRAINT count_lines_location_id_fkey,
    DROP CONSTRAINT count_lines_lot_id_fkey,
    DROP CONSTRAINT count_lines_counted_by_user_fkey,
    DROP CONSTRAINT count_lines_counted_by_device_fkey;

-- An INSERT ... ON CONFLICT DO UPDATE fires both statement triggers.
CREATE TRIGGER count_lines_references_insert AFTER INSERT ON count_lines
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
    EXECUTE FUNCTION check_references(
        'count_lines_count_id_fkey', 'count_id', 'count_sessions',
        'count_lines_product_id_fkey', 'product_id', 'products',
        'count_lines_location_id_fkey', 'location_id', 'locations',
        'count_lines_lot_id_fkey', 'lot_id', 'lots',
        'count_lines_counted_by_user_fkey', 'counted_by_user', 'users',
        'count_lines_counted_by_device_fkey', 'counted_by_device', 'devices');
-- A line's position (count, product, location, lot) never changes, so an
-- update checks only who counted: a foreign key skips unchanged keys too, and
-- every scanner batch updates the lines it counts.
CREATE FUNCTION count_lines_position_fixed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the position of a count line never changes (count, product, location, lot)'
        USING ERRCODE = 'integrity_constraint_violation', TABLE = TG_TABLE_NAME, SCHEMA = TG_TABLE_SCHEMA;
END $$;
CREATE TRIGGER count_lines_position_fixed BEFORE UPDATE ON count_lines
    FOR EACH ROW WHEN ((OLD.count_id, OLD.product_id, OLD.location_id, OLD.lot_id)
                       IS DISTINCT FROM (NEW.count_id, NEW.product_id, NEW.location_id, NEW.lot_id))
    EXECUTE FUNCTION count_lines_position_fixed();
CREATE TRIGGER count_lines_references_update AFTER UPDATE ON count_lines
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
    EXECUTE FUNCTION check_references(
        'count_lines_counted_by_user_fkey', 'counted_by_user', 'users',
        'count_lines_counted_by_device_fkey', 'counted_by_device', 'devices');

-- The referenced side. (The ledger is append-only already: its own trigger
-- refuses every UPDATE and DELETE.)
CREATE TRIGGER count_sessions_referenced_delete AFTER DELETE ON count_sessions
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT
    EXECUTE FUNCTION check_referenced_delete('count_lines_count_id_fkey', 'count_lines', 'count_id', 'cascade');
CREATE TRIGGER products_referenced_delete AFTER DELETE ON products
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT
    EXECUTE FUNCTION check_referenced_delete('count_lines_product_id_fkey', 'count_lines', 'product_id', 'restrict');
CREATE TRIGGER locations_referenced_delete AFTER DELETE ON locations
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT
    EXECUTE FUNCTION check_referenced_delete('count_lines_location_id_fkey', 'count_lines', 'location_id', 'restrict');
CREATE TRIGGER lots_referenced_delete AFTER DELETE ON lots
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT
    EXECUTE FUNCTION check_referenced_delete('count_lines_lot_id_fkey', 'count_lines', 'lot_id', 'restrict');
CREATE TRIGGER users_referenced_delete AFTER DELETE ON users
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT
    EXECUTE FUNCTION check_referenced_delete(
        'count_lines_counted_by_user_fkey', 'count_lines', 'counted_by_user', 'restrict');
CREATE TRIGGER devices_referenced_delete AFTER DELETE ON devices
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT
    EXECUTE FUNCTION check_referenced_delete(
        'count_lines_counted_by_device_fkey', 'count_lines', 'counted_by_device', 'restrict');

CREATE TRIGGER count_sessions_id_fixed BEFORE UPDATE OF id ON count_sessions
    FOR EACH ROW WHEN (OLD.id IS DISTINCT FROM NEW.id) EXECUTE FUNCTION refuse_id_change();
CREATE TRIGGER products_id_fixed BEFORE UPDATE OF id ON products
    FOR EACH ROW WHEN (OLD.id IS DISTINCT FROM NEW.id) EXECUTE FUNCTION refuse_id_change();
CREATE TRIGGER locations_id_fixed BEFORE UPDATE OF id ON locations
    FOR EACH ROW WHEN (OLD.id IS DISTINCT FROM NEW.id) EXECUTE FUNCTION refuse_id_change();
CREATE TRIGGER lots_id_fixed BEFORE UPDATE OF id ON lots
    FOR EACH ROW WHEN (OLD.id IS DISTINCT FROM NEW.id) EXECUTE FUNCTION refuse_id_change();
CREATE TRIGGER users_id_fixed BEFORE UPDATE OF id ON users
    FOR EACH ROW WHEN (OLD.id IS DISTINCT FROM NEW.id) EXECUTE FUNCTION refuse_id_change();
CREATE TRIGGER devices_id_fixed BEFORE UPDATE OF id ON devices
    FOR EACH ROW WHEN (OLD.id IS DISTINCT FROM NEW.id) EXECUTE FUNCTION refuse_id_change();
