-- The DEFAULT location's unlotted stock is counted on its level (issue 13:
-- "no more than 15 % below v1").
--
-- Why: a v1-shaped movement (no location, no lot) changes the level and the
-- DEFAULT position by the same amount, so it locked and rewrote two rows
-- where v1 rewrote one. Without that write and lock pgbench's movements ran
-- +9 % (bench/README.md, "The DEFAULT position on its level").
--
-- Now a level also keeps `elsewhere`: its units held in every position but
-- the DEFAULT location's unlotted one. That position's quantity is the
-- level's `quantity - elsewhere`, and its row in stock_positions keeps
-- `quantity` NULL ("kept on the level"): the row stays the position's
-- identity (its id, its key, what the ledger's position check and the
-- foreign keys name), but a movement there writes the level only. Readers
-- take quantities through src/stock/held.rs, never from the column alone
-- (not a view: see there why).
--
-- What holds, in the database:
-- - A level is inserted with its DEFAULT position (the trigger below), so
--   every ledger row at DEFAULT without a lot names a position.
-- - An unlotted position keeps NULL exactly when it is at DEFAULT (the
--   trigger below, which runs only when an unlotted position is written);
--   a lot position always carries its own quantity (the CHECK below).
-- - 0 <= elsewhere <= quantity on every level.
-- Writers that know only v1 (seeding, imports in SQL) still insert a level
-- with stock and nothing else: `elsewhere` is 0, so it is all at DEFAULT, as
-- the trigger it replaces (stock_levels_v1_position) made it.
ALTER TABLE stock_levels
    ADD COLUMN elsewhere bigint NOT NULL DEFAULT 0,
    -- When that position last changed (the level's updated_at also moves
    -- with its other positions and its reservations).
    ADD COLUMN default_updated_at timestamptz NOT NULL DEFAULT now();

-- Every level gets its DEFAULT position (an earlier path or SQL writer may
-- have left one without it).
INSERT INTO stock_positions (product_id, warehouse_id, location_id, quantity)
SELECT s.product_id, s.warehouse_id, l.id, 0
FROM stock_levels s JOIN locations l ON l.warehouse_id = s.warehouse_id AND lower(l.code) = 'default'
ON CONFLICT ON CONSTRAINT stock_positions_key DO NOTHING;

ALTER TABLE stock_positions ALTER COLUMN quantity DROP NOT NULL;
-- Existing positions are untouched but for the DEFAULT unlotted ones.
UPDATE stock_levels s SET elsewhere = o.held
FROM (SELECT sp.product_id, sp.warehouse_id, sum(sp.quantity) AS held
      FROM stock_positions sp JOIN locations l ON l.id = sp.location_id
      WHERE sp.lot_id IS NOT NULL OR lower(l.code) <> 'default'
      GROUP BY sp.product_id, sp.warehouse_id) o
WHERE s.product_id = o.product_id AND s.warehouse_id = o.warehouse_id AND o.held <> 0;
UPDATE stock_levels s SET default_updated_at = sp.updated_at
FROM stock_positions sp JOIN locations l ON l.id = sp.location_id
WHERE lower(l.code) = 'default' AND sp.lot_id IS NULL
  AND sp.product_id = s.product_id AND sp.warehouse_id = s.warehouse_id;
UPDATE stock_positions sp SET quantity = NULL
FROM locations l
WHERE l.id = sp.location_id AND lower(l.code) = 'default' AND sp.lot_id IS NULL;

ALTER TABLE stock_positions
    ADD CONSTRAINT stock_positions_quantity_kept CHECK (quantity IS NOT NULL OR lot_id IS NULL);
-- (Named to sort after stock_levels_quantity_non_negative: PostgreSQL
-- checks a row's constraints in name order, and a negative quantity should
-- be reported as that.)
ALTER TABLE stock_levels
    ADD CONSTRAINT stock_levels_sum_covers_elsewhere CHECK (elsewhere >= 0 AND elsewhere <= quantity);

CREATE FUNCTION stock_positions_kept_on_level() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF (NEW.quantity IS NULL) <> EXISTS (SELECT 1 FROM locations
                                         WHERE id = NEW.location_id AND lower(code) = 'default') THEN
        RAISE check_violation USING
            MESSAGE = 'stock_positions: an unlotted position keeps its quantity on its level (NULL) '
                      'exactly when it is at its warehouse''s DEFAULT location',
            CONSTRAINT = 'stock_positions_kept_on_level', TABLE = TG_TABLE_NAME, SCHEMA = TG_TABLE_SCHEMA;
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER stock_positions_kept_on_level BEFORE INSERT OR UPDATE OF quantity ON stock_positions
    FOR EACH ROW WHEN (NEW.lot_id IS NULL) EXECUTE FUNCTION stock_positions_kept_on_level();

DROP TRIGGER stock_levels_v1_position ON stock_levels;
DROP FUNCTION stock_levels_v1_position();
-- A row trigger, not a statement trigger: a statement that inserts a level
-- and a ledger row at DEFAULT (seeding in SQL does) needs the position
-- before the ledger row's check, which a statement trigger would follow.
CREATE FUNCTION stock_levels_default_position() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO stock_positions (product_id, warehouse_id, location_id, quantity)
    SELECT NEW.product_id, NEW.warehouse_id, l.id, NULL
    FROM locations l WHERE l.warehouse_id = NEW.warehouse_id AND lower(l.code) = 'default'
    ON CONFLICT ON CONSTRAINT stock_positions_key DO NOTHING;
    RETURN NULL;
END $$;
CREATE TRIGGER stock_levels_default_position AFTER INSERT ON stock_levels
    FOR EACH ROW EXECUTE FUNCTION stock_levels_default_position();

-- The one-statement path: the level alone. An addition adds to the level
-- (the DEFAULT position is its `quantity - elsewhere`); a removal needs
-- nothing elsewhere (all the stock at DEFAULT, unlotted: the case where
-- first-expiring-first takes exactly this position) and enough of it.
-- Otherwise as in migration 20261203060001.
CREATE OR REPLACE FUNCTION stock_move_default(
    p_id uuid, p_kind text, p_product uuid, p_warehouse uuid, p_delta bigint,
    p_unit_cost numeric, p_reason text, p_reference text, p_note text,
    p_user uuid, p_device uuid
) RETURNS SETOF stock_transactions LANGUAGE plpgsql AS $$
DECLARE
    lvl_quantity bigint;
    lvl_reserved bigint;
    lvl_value numeric;
    lvl_cost numeric;
    lvl_elsewhere bigint;
    product_cost numeric;
    location uuid;
    cost numeric;
    new_quantity bigint;
    new_value numeric;
    new_cost numeric;
    scaled numeric;
    whole numeric;
BEGIN
    -- Statement 1: lock the level, with the product, warehouse and DEFAULT
    -- location fit for this path (joined: no row = not this path).
    SELECT s.quantity, s.reserved, s.value, s.unit_cost, s.elsewhere, p.unit_cost, l.id
    INTO lvl_quantity, lvl_reserved, lvl_value, lvl_cost, lvl_elsewhere, product_cost, location
    FROM stock_levels s
    JOIN products p ON p.id = s.product_id AND p.active AND p.tracking = 'none'
    JOIN warehouses w ON w.id = s.warehouse_id AND w.active
    JOIN locations l ON l.warehouse_id = s.warehouse_id AND lower(l.code) = 'default' AND l.active
    WHERE s.product_id = p_product AND s.warehouse_id = p_warehouse
    FOR UPDATE OF s;
    IF NOT FOUND OR lvl_reserved <> 0 THEN
        RETURN;
    END IF;
    IF p_delta < 0 AND (lvl_elsewhere <> 0 OR lvl_quantity < -p_delta) THEN
        RETURN;
    END IF;

    IF p_delta > 0 THEN
        cost := COALESCE(p_unit_cost,
                         CASE WHEN lvl_quantity > 0 THEN lvl_cost ELSE product_cost END);
    ELSE
        cost := lvl_cost;
    END IF;
    new_quantity := lvl_quantity + p_delta;
    new_value := lvl_value + p_delta * cost;
    IF new_quantity = 0 OR new_value < 0 THEN
        new_value := 0;
    END IF;
    new_cost := lvl_cost;
    IF p_delta > 0 THEN
        -- value / quantity rounded half to even at 4 decimals, exactly:
        -- value has 4 decimals, so value * 10^4 is whole.
        scaled := new_value * 10000;
        whole := div(scaled, new_quantity);
        IF 2 * (scaled - whole * new_quantity) > new_quantity
           OR (2 * (scaled - whole * new_quantity) = new_quantity AND mod(whole, 2) = 1) THEN
            whole := whole + 1;
        END IF;
        new_cost := whole / 10000;
    END IF;

    -- Statement 2: every write.
    RETURN QUERY
    WITH lvl AS (
        UPDATE stock_levels SET quantity = new_quantity, value = new_value, unit_cost = new_cost,
            version = version + 1, updated_at = now(), default_updated_at = now()
        WHERE product_id = p_product AND warehouse_id = p_warehouse
    ), t AS (
        INSERT INTO stock_transactions (id, kind, product_id, warehouse_id, location_id, quantity,
            balance_after, warehouse_balance_after, unit_cost, reason, reference, note,
            actor_user_id, actor_device_id, value_after)
        VALUES (p_id, p_kind, p_product, p_warehouse, location, p_delta,
            new_quantity - lvl_elsewhere, new_quantity, cost, p_reason, p_reference, p_note,
            p_user, p_device, new_value)
        RETURNING *
    ), ev AS (
        INSERT INTO outbox (topic, aggregate_id, payload)
        SELECT 'stock.' || t.kind, t.product_id, stock_event_payload(t::stock_transactions)
        FROM t
    )
    SELECT * FROM t;
END $$;
