-- A ledger row names an existing position, checked without locking a row
-- every movement shares; it replaces the ledger's foreign keys to products,
-- locations, lots and users.
--
-- Why: a foreign key locks the row it names FOR KEY SHARE. Every movement of
-- a warehouse names its one DEFAULT location, and every movement of a clerk
-- names the clerk's user row, so 16 concurrent movements share a MultiXact
-- on each of those two rows (a new one each time a locker comes or goes).
-- Without those two keys pgbench's movements ran +18 % to +23 % faster
-- CPU-bound and +10 % with every commit flushed; with the check below in
-- their place +11 % and +17 %, scanner batches +8-12 % (bench/README.md,
-- "The ledger names its position").
--
-- What holds instead, each in the database:
-- - Every ledger row names a position (product, warehouse, location, lot):
--   the trigger below, at the end of the inserting statement (the engine
--   writes the position in the same statement). The position's own foreign
--   keys name its level (so its product and warehouse), its location (a
--   location of that warehouse) and its lot (a lot of that product): what
--   the ledger's keys said, one step removed.
-- - Positions are never deleted and their keys never change (triggers
--   below), so a position found once stays, and no lock is needed. A
--   location, lot or level with a position cannot be deleted (the
--   positions' foreign keys, which the engine's first write to a new
--   position takes as before).
-- - Users are never deleted (they are deactivated: the ledger, counts and
--   reservations name them), so the actor check needs no lock either.
-- The keys to devices, count sessions and reservations stay: no movement
-- path locks one of those rows from many transactions at once.

-- Rows written in SQL around the engine may lack a level or position (the
-- engine always writes both): given one at zero, so the rule holds for every
-- row already there.
INSERT INTO stock_levels (product_id, warehouse_id, quantity)
SELECT DISTINCT product_id, warehouse_id, 0 FROM stock_transactions
ON CONFLICT DO NOTHING;
INSERT INTO stock_positions (product_id, warehouse_id, location_id, lot_id, quantity)
SELECT DISTINCT product_id, warehouse_id, location_id, lot_id, 0 FROM stock_transactions
ON CONFLICT ON CONSTRAINT stock_positions_key DO NOTHING;

CREATE FUNCTION stock_transactions_check_position() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM FROM stock_positions
    WHERE product_id = NEW.product_id AND warehouse_id = NEW.warehouse_id
      AND location_id = NEW.location_id AND lot_id IS NOT DISTINCT FROM NEW.lot_id;
    IF NOT FOUND THEN
        PERFORM raise_missing_reference(TG_TABLE_SCHEMA, TG_TABLE_NAME, 'stock_transactions_position_fkey',
            'product_id, warehouse_id, location_id, lot_id', 'stock_positions',
            concat_ws(', ', NEW.product_id, NEW.warehouse_id, NEW.location_id, coalesce(NEW.lot_id::text, 'null')));
    END IF;
    IF NEW.actor_user_id IS NOT NULL THEN
        PERFORM FROM users WHERE id = NEW.actor_user_id;
        IF NOT FOUND THEN
            PERFORM raise_missing_reference(TG_TABLE_SCHEMA, TG_TABLE_NAME, 'stock_transactions_actor_user_id_fkey',
                'actor_user_id', 'users', NEW.actor_user_id::text);
        END IF;
    END IF;
    RETURN NULL;
END $$;

ALTER TABLE stock_transactions
    DROP CONSTRAINT stock_transactions_product_id_fkey,
    DROP CONSTRAINT stock_transactions_location_fkey,
    DROP CONSTRAINT stock_transactions_lot_fkey,
    DROP CONSTRAINT stock_transactions_actor_user_id_fkey;

-- AFTER, like a foreign key's check: positions the same statement writes
-- (the engine's data-modifying CTEs run in no set order) are there by then.
CREATE TRIGGER stock_transactions_position AFTER INSERT ON stock_transactions
    FOR EACH ROW EXECUTE FUNCTION stock_transactions_check_position();

-- TG_ARGV[0]: what is refused and why.
CREATE FUNCTION refuse_row_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE foreign_key_violation USING
        MESSAGE = format('%s: %s', TG_TABLE_NAME, TG_ARGV[0]),
        TABLE = TG_TABLE_NAME, SCHEMA = TG_TABLE_SCHEMA;
END $$;
CREATE TRIGGER stock_positions_kept BEFORE DELETE ON stock_positions
    FOR EACH ROW EXECUTE FUNCTION refuse_row_change(
        'a position is never deleted (ledger rows name it; an empty one stays at zero)');
CREATE TRIGGER stock_positions_key_fixed BEFORE UPDATE OF product_id, warehouse_id, location_id, lot_id
    ON stock_positions FOR EACH ROW
    WHEN ((OLD.product_id, OLD.warehouse_id, OLD.location_id, OLD.lot_id)
          IS DISTINCT FROM (NEW.product_id, NEW.warehouse_id, NEW.location_id, NEW.lot_id))
    EXECUTE FUNCTION refuse_row_change(
        'the product, warehouse, location and lot of a position never change (ledger rows name them)');
CREATE TRIGGER users_kept BEFORE DELETE ON users
    FOR EACH ROW EXECUTE FUNCTION refuse_row_change(
        'a user is never deleted (the ledger names its actors): deactivate it instead');
