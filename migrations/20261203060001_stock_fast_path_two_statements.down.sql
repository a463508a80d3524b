-- Back to the seven-statement function and the IMMUTABLE payload function.
ALTER FUNCTION stock_event_payload(stock_transactions) IMMUTABLE;

CREATE OR REPLACE FUNCTION stock_move_default(
    p_id uuid, p_kind text, p_product uuid, p_warehouse uuid, p_delta bigint,
    p_unit_cost numeric, p_reason text, p_reference text, p_note text,
    p_user uuid, p_device uuid
) RETURNS SETOF stock_transactions LANGUAGE plpgsql AS $$
DECLARE
    lvl stock_levels%ROWTYPE;
    product_cost numeric;
    location uuid;
    at_default bigint;
    cost numeric;
    new_quantity bigint;
    new_value numeric;
    new_cost numeric;
    scaled numeric;
    whole numeric;
    row stock_transactions%ROWTYPE;
BEGIN
    SELECT * INTO lvl FROM stock_levels
    WHERE product_id = p_product AND warehouse_id = p_warehouse FOR UPDATE;
    IF NOT FOUND OR lvl.reserved <> 0 THEN
        RETURN;
    END IF;
    SELECT p.unit_cost, l.id INTO product_cost, location
    FROM products p, warehouses w, locations l
    WHERE p.id = p_product AND p.active AND p.tracking = 'none'
      AND w.id = p_warehouse AND w.active
      AND l.warehouse_id = w.id AND lower(l.code) = 'default' AND l.active;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    SELECT quantity INTO at_default FROM stock_positions
    WHERE product_id = p_product AND warehouse_id = p_warehouse
      AND location_id = location AND lot_id IS NULL;
    at_default := COALESCE(at_default, 0);
    IF p_delta < 0 AND (at_default <> lvl.quantity OR at_default < -p_delta) THEN
        RETURN;
    END IF;

    IF p_delta > 0 THEN
        cost := COALESCE(p_unit_cost,
                         CASE WHEN lvl.quantity > 0 THEN lvl.unit_cost ELSE product_cost END);
    ELSE
        cost := lvl.unit_cost;
    END IF;
    new_quantity := lvl.quantity + p_delta;
    new_value := lvl.value + p_delta * cost;
    IF new_quantity = 0 OR new_value < 0 THEN
        new_value := 0;
    END IF;
    new_cost := lvl.unit_cost;
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

    UPDATE stock_levels SET quantity = new_quantity, value = new_value, unit_cost = new_cost,
        version = version + 1, updated_at = now()
    WHERE product_id = p_product AND warehouse_id = p_warehouse;
    INSERT INTO stock_positions AS s (product_id, warehouse_id, location_id, lot_id, quantity)
    VALUES (p_product, p_warehouse, location, NULL, at_default + p_delta)
    ON CONFLICT ON CONSTRAINT stock_positions_key
    DO UPDATE SET quantity = EXCLUDED.quantity, updated_at = now();
    INSERT INTO stock_transactions (id, kind, product_id, warehouse_id, location_id, quantity,
        balance_after, warehouse_balance_after, unit_cost, reason, reference, note,
        actor_user_id, actor_device_id, value_after)
    VALUES (p_id, p_kind, p_product, p_warehouse, location, p_delta, at_default + p_delta,
        new_quantity, cost, p_reason, p_reference, p_note, p_user, p_device, new_value)
    RETURNING * INTO row;
    INSERT INTO outbox (topic, aggregate_id, payload)
    VALUES ('stock.' || row.kind, row.product_id, stock_event_payload(row));
    RETURN NEXT row;
END $$;
