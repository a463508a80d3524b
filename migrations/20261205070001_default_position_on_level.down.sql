-- Back to a stored quantity on every position, a per-row trigger for
-- levels inserted with stock, and the one-statement path that writes the
-- DEFAULT position beside the level.
CREATE FUNCTION stock_levels_v1_position() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO stock_positions (product_id, warehouse_id, location_id, quantity)
    SELECT NEW.product_id, NEW.warehouse_id, l.id, NEW.quantity
    FROM locations l WHERE l.warehouse_id = NEW.warehouse_id AND lower(l.code) = 'default';
    RETURN NULL;
END $$;
DROP TRIGGER stock_levels_default_position ON stock_levels;
DROP FUNCTION stock_levels_default_position();
CREATE TRIGGER stock_levels_v1_position AFTER INSERT ON stock_levels
    FOR EACH ROW WHEN (NEW.quantity <> 0) EXECUTE FUNCTION stock_levels_v1_position();

DROP TRIGGER stock_positions_kept_on_level ON stock_positions;
DROP FUNCTION stock_positions_kept_on_level();
UPDATE stock_positions sp SET quantity = s.quantity - s.elsewhere, updated_at = s.default_updated_at
FROM stock_levels s
WHERE sp.quantity IS NULL AND s.product_id = sp.product_id AND s.warehouse_id = sp.warehouse_id;
ALTER TABLE stock_positions
    DROP CONSTRAINT stock_positions_quantity_kept,
    ALTER COLUMN quantity SET NOT NULL;
ALTER TABLE stock_levels
    DROP CONSTRAINT stock_levels_sum_covers_elsewhere,
    DROP COLUMN elsewhere,
    DROP COLUMN default_updated_at;

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
    product_cost numeric;
    location uuid;
    at_default bigint;
    cost numeric;
    new_quantity bigint;
    new_value numeric;
    new_cost numeric;
    scaled numeric;
    whole numeric;
BEGIN
    -- Statement 1: lock the level and its DEFAULT position (in the
    -- engine's order: level, then position), with the product, warehouse and
    -- DEFAULT location fit for this path (joined: no row = not this path).
    -- Both rows are locked, so if the lock had to wait, PostgreSQL re-reads
    -- both as the other transaction left them.
    SELECT s.quantity, s.reserved, s.value, s.unit_cost, p.unit_cost, l.id, d.quantity
    INTO lvl_quantity, lvl_reserved, lvl_value, lvl_cost, product_cost, location, at_default
    FROM stock_levels s
    JOIN products p ON p.id = s.product_id AND p.active AND p.tracking = 'none'
    JOIN warehouses w ON w.id = s.warehouse_id AND w.active
    JOIN locations l ON l.warehouse_id = s.warehouse_id AND lower(l.code) = 'default' AND l.active
    JOIN stock_positions d ON d.product_id = s.product_id AND d.warehouse_id = s.warehouse_id
                          AND d.location_id = l.id AND d.lot_id IS NULL
    WHERE s.product_id = p_product AND s.warehouse_id = p_warehouse
    FOR UPDATE OF s FOR NO KEY UPDATE OF d;
    IF NOT FOUND OR lvl_reserved <> 0 THEN
        RETURN;
    END IF;
    IF p_delta < 0 AND (at_default <> lvl_quantity OR at_default < -p_delta) THEN
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

    -- Statement 3: every write.
    RETURN QUERY
    WITH lvl AS (
        UPDATE stock_levels SET quantity = new_quantity, value = new_value, unit_cost = new_cost,
            version = version + 1, updated_at = now()
        WHERE product_id = p_product AND warehouse_id = p_warehouse
    ), pos AS (
        UPDATE stock_positions SET quantity = at_default + p_delta, updated_at = now()
        WHERE product_id = p_product AND warehouse_id = p_warehouse
          AND location_id = location AND lot_id IS NULL
    ), t AS (
        INSERT INTO stock_transactions (id, kind, product_id, warehouse_id, location_id, quantity,
            balance_after, warehouse_balance_after, unit_cost, reason, reference, note,
            actor_user_id, actor_device_id, value_after)
        VALUES (p_id, p_kind, p_product, p_warehouse, location, p_delta, at_default + p_delta,
            new_quantity, cost, p_reason, p_reference, p_note, p_user, p_device, new_value)
        RETURNING *
    ), ev AS (
        INSERT INTO outbox (topic, aggregate_id, payload)
        SELECT 'stock.' || t.kind, t.product_id, stock_event_payload(t::stock_transactions)
        FROM t
    )
    SELECT * FROM t;
END $$;
