-- v2 "promised and worth": reservations and moving-average valuation.
--
-- reserved lives on the (product, warehouse) level, changed in the same
-- transaction as the reservation, under the level's row lock (the lock every
-- movement takes first), and the CHECK reserved <= quantity means no
-- interleaving of reservations, issues and transfers can over-promise.
--
-- value is the level's stock value at its weighted moving average cost
-- (unit_cost, rounded half even at 4 decimals); each ledger row stores the
-- cost its units moved at (unit_cost) and the level's value after it
-- (value_after). Existing levels start at the product's unit cost; existing
-- ledger rows have no value_after (reads value them at the product's cost).

ALTER TABLE stock_levels
    ADD COLUMN reserved bigint NOT NULL DEFAULT 0,
    ADD COLUMN unit_cost numeric(14, 4) NOT NULL DEFAULT 0,
    ADD COLUMN value numeric(24, 4) NOT NULL DEFAULT 0,
    ADD CONSTRAINT stock_levels_reserved_range CHECK (reserved >= 0 AND reserved <= quantity),
    ADD CONSTRAINT stock_levels_value_non_negative CHECK (value >= 0 AND unit_cost >= 0);
UPDATE stock_levels s SET unit_cost = p.unit_cost, value = s.quantity * p.unit_cost
FROM products p WHERE p.id = s.product_id AND s.quantity > 0;

-- A level inserted with stock by a v1-era writer (seeding) is valued at the
-- product's unit cost.
CREATE FUNCTION stock_levels_v1_value() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    SELECT unit_cost, NEW.quantity * unit_cost INTO NEW.unit_cost, NEW.value
    FROM products WHERE id = NEW.product_id;
    RETURN NEW;
END $$;
CREATE TRIGGER stock_levels_v1_value BEFORE INSERT ON stock_levels
    FOR EACH ROW WHEN (NEW.quantity <> 0 AND NEW.value = 0) EXECUTE FUNCTION stock_levels_v1_value();

CREATE TABLE reservations (
    id                  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    product_id          uuid NOT NULL,
    warehouse_id        uuid NOT NULL,
    lot_id              uuid,
    quantity            bigint NOT NULL CHECK (quantity BETWEEN 1 AND 1000000000),
    fulfilled_quantity  bigint NOT NULL DEFAULT 0,
    status              text NOT NULL DEFAULT 'active'
                            CHECK (status IN ('active', 'fulfilled', 'cancelled', 'expired')),
    reference           text CHECK (length(reference) <= 200),
    expires_at          timestamptz,
    created_by          uuid REFERENCES users (id),
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    closed_at           timestamptz,
    CONSTRAINT reservations_fulfilled_range CHECK (fulfilled_quantity BETWEEN 0 AND quantity),
    CONSTRAINT reservations_fulfilled_when_complete CHECK ((status = 'fulfilled') = (fulfilled_quantity = quantity)),
    CONSTRAINT reservations_closed CHECK ((status = 'active') = (closed_at IS NULL)),
    CONSTRAINT reservations_level_fkey FOREIGN KEY (product_id, warehouse_id)
        REFERENCES stock_levels (product_id, warehouse_id),
    CONSTRAINT reservations_lot_fkey FOREIGN KEY (product_id, lot_id) REFERENCES lots (product_id, id)
);
CREATE INDEX reservations_open_idx ON reservations (product_id, warehouse_id) WHERE status = 'active';
CREATE INDEX reservations_expiry_idx ON reservations (expires_at) WHERE status = 'active' AND expires_at IS NOT NULL;
CREATE INDEX reservations_created_idx ON reservations (created_at DESC, id DESC);
CREATE INDEX reservations_reference_idx ON reservations (reference, created_at DESC) WHERE reference IS NOT NULL;
CREATE TRIGGER reservations_touch BEFORE UPDATE ON reservations FOR EACH ROW EXECUTE FUNCTION touch_updated_at();

ALTER TABLE stock_transactions
    ADD COLUMN value_after numeric(24, 4),
    ADD COLUMN reservation_id uuid REFERENCES reservations (id);
