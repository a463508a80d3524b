-- v2 "where and which": locations (bins), lots with expiry, serial numbers.
--
-- Stock is now held in positions keyed by (product, warehouse, location, lot).
-- The v1 level of (product, warehouse) stays as a row of its own and is the
-- sum of its positions; it is also the lock every movement takes first, in
-- (product, warehouse) order, before touching any position under it (see
-- src/stock/engine). Positions therefore need no lock order of their own.
--
-- Existing data: every warehouse gets its DEFAULT location; every level
-- becomes one position there with no lot; every ledger row is stamped with
-- that location and with warehouse_balance_after = balance_after (for a
-- single position per level the two are the same number).

------------------------------------------------------------------------------
-- Locations: a tree per warehouse.
------------------------------------------------------------------------------
CREATE TABLE locations (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    warehouse_id  uuid NOT NULL REFERENCES warehouses (id),
    parent_id     uuid,
    code          text NOT NULL CONSTRAINT locations_code_format
                      CHECK (code ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$'),
    name          text NOT NULL DEFAULT '' CHECK (length(name) <= 200),
    -- The label a scanner reads; unique among locations (and, checked by the
    -- trigger below, not a product barcode).
    barcode       text CONSTRAINT locations_barcode_format CHECK (barcode ~ '^[ -~]{1,128}$'),
    active        boolean NOT NULL DEFAULT true,
    -- Codes from the root joined by '/', kept by the trigger below.
    path          text NOT NULL DEFAULT '',
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    -- Target of the composite keys below: a parent, a position or a ledger row
    -- names a location of ITS warehouse.
    CONSTRAINT locations_warehouse_id_key UNIQUE (warehouse_id, id),
    CONSTRAINT locations_parent_same_warehouse FOREIGN KEY (warehouse_id, parent_id)
        REFERENCES locations (warehouse_id, id),
    CONSTRAINT locations_not_own_parent CHECK (parent_id IS DISTINCT FROM id)
);
CREATE UNIQUE INDEX locations_code_key ON locations (warehouse_id, lower(code));
CREATE UNIQUE INDEX locations_barcode_key ON locations (barcode);
CREATE INDEX locations_parent_idx ON locations (parent_id);
CREATE TRIGGER locations_touch BEFORE UPDATE ON locations FOR EACH ROW EXECUTE FUNCTION touch_updated_at();

-- path = parent's path + '/' + code; refuses cycles (a parent that is the
-- location itself or one of its descendants).
CREATE FUNCTION locations_set_path() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    parent_path text;
BEGIN
    IF NEW.parent_id IS NULL THEN
        NEW.path := NEW.code;
    ELSE
        SELECT path INTO parent_path FROM locations WHERE id = NEW.parent_id;
        IF TG_OP = 'UPDATE' AND (parent_path = OLD.path OR parent_path LIKE OLD.path || '/%') THEN
            RAISE EXCEPTION 'location % cannot be its own ancestor', NEW.id
                USING ERRCODE = 'check_violation', CONSTRAINT = 'locations_no_cycle';
        END IF;
        NEW.path := parent_path || '/' || NEW.code;
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER locations_path BEFORE INSERT OR UPDATE OF code, parent_id, path ON locations
    FOR EACH ROW EXECUTE FUNCTION locations_set_path();

-- A renamed or moved location renames the paths of its subtree (each child's
-- own trigger recomputes from its parent, recursively).
CREATE FUNCTION locations_cascade_path() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE locations SET path = '' WHERE parent_id = NEW.id;
    RETURN NULL;
END $$;
CREATE TRIGGER locations_path_cascade AFTER UPDATE ON locations
    FOR EACH ROW WHEN (NEW.path IS DISTINCT FROM OLD.path) EXECUTE FUNCTION locations_cascade_path();

-- One barcode, one thing: a location label must not be a product's barcode.
CREATE FUNCTION locations_barcode_not_product() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.barcode IS NOT NULL AND EXISTS (
        SELECT 1 FROM product_barcodes WHERE lookup_key = NEW.barcode OR barcode = NEW.barcode
    ) THEN
        RAISE EXCEPTION 'barcode % belongs to a product', NEW.barcode
            USING ERRCODE = 'unique_violation', CONSTRAINT = 'locations_barcode_key';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER locations_barcode_unique BEFORE INSERT OR UPDATE OF barcode ON locations
    FOR EACH ROW EXECUTE FUNCTION locations_barcode_not_product();

-- Every warehouse has its DEFAULT location, created with it: a movement that
-- names no location uses it, so v1 requests keep working unchanged.
CREATE FUNCTION warehouses_create_default_location() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO locations (warehouse_id, code, name) VALUES (NEW.id, 'DEFAULT', 'Default location');
    RETURN NULL;
END $$;
CREATE TRIGGER warehouses_default_location AFTER INSERT ON warehouses
    FOR EACH ROW EXECUTE FUNCTION warehouses_create_default_location();
INSERT INTO locations (warehouse_id, code, name)
SELECT id, 'DEFAULT', 'Default location' FROM warehouses;

------------------------------------------------------------------------------
-- Tracking, lots and serial numbers.
------------------------------------------------------------------------------
ALTER TABLE products ADD COLUMN tracking text NOT NULL DEFAULT 'none'
    CONSTRAINT products_tracking_values CHECK (tracking IN ('none', 'lot', 'serial'));

-- GS1 AI 10 carries up to 20 characters; so does the ledger's lot column.
CREATE TABLE lots (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    product_id  uuid NOT NULL REFERENCES products (id),
    code        text NOT NULL CONSTRAINT lots_code_format CHECK (code ~ '^[!-~]{1,20}$'),
    expires_on  date,
    created_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT lots_product_code_key UNIQUE (product_id, code),
    CONSTRAINT lots_product_id_key UNIQUE (product_id, id)
);
CREATE INDEX lots_expiry_idx ON lots (expires_on) WHERE expires_on IS NOT NULL;

-- Positions: what sits where. quantity >= 0 is the last line of defence
-- behind the engine's planning under the level lock.
CREATE TABLE stock_positions (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    product_id    uuid NOT NULL,
    warehouse_id  uuid NOT NULL,
    location_id   uuid NOT NULL,
    lot_id        uuid,
    quantity      bigint NOT NULL CONSTRAINT stock_positions_quantity_non_negative CHECK (quantity >= 0),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT stock_positions_key UNIQUE NULLS NOT DISTINCT (product_id, warehouse_id, location_id, lot_id),
    CONSTRAINT stock_positions_level_fkey FOREIGN KEY (product_id, warehouse_id)
        REFERENCES stock_levels (product_id, warehouse_id),
    CONSTRAINT stock_positions_location_fkey FOREIGN KEY (warehouse_id, location_id)
        REFERENCES locations (warehouse_id, id),
    CONSTRAINT stock_positions_lot_fkey FOREIGN KEY (product_id, lot_id)
        REFERENCES lots (product_id, id)
);
-- Bumped by every movement that changes a position of the level: a movement
-- reads positions in the same statement that takes the level lock and knows
-- they are current when the version it locked is the version it read.
ALTER TABLE stock_levels ADD COLUMN version bigint NOT NULL DEFAULT 0;

CREATE INDEX stock_positions_location_idx ON stock_positions (location_id) WHERE quantity > 0;
CREATE INDEX stock_positions_lot_idx ON stock_positions (lot_id) WHERE lot_id IS NOT NULL;
CREATE INDEX stock_positions_warehouse_idx ON stock_positions (warehouse_id, product_id);

INSERT INTO stock_positions (product_id, warehouse_id, location_id, quantity, updated_at)
SELECT s.product_id, s.warehouse_id, l.id, s.quantity, s.updated_at
FROM stock_levels s JOIN locations l ON l.warehouse_id = s.warehouse_id AND l.code = 'DEFAULT';

-- Writers that know only v1 (seeding, imports in SQL) insert a level with
-- stock: it is held at the DEFAULT location, so level = sum of positions
-- still holds. The engine inserts levels at zero and writes positions itself.
CREATE FUNCTION stock_levels_v1_position() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO stock_positions (product_id, warehouse_id, location_id, quantity)
    SELECT NEW.product_id, NEW.warehouse_id, l.id, NEW.quantity
    FROM locations l WHERE l.warehouse_id = NEW.warehouse_id AND lower(l.code) = 'default';
    RETURN NULL;
END $$;
CREATE TRIGGER stock_levels_v1_position AFTER INSERT ON stock_levels
    FOR EACH ROW WHEN (NEW.quantity <> 0) EXECUTE FUNCTION stock_levels_v1_position();

-- A serial number's stints in stock: a receipt inserts a row, an issue ends
-- it (in_stock = false), a transfer moves it. The partial unique index is the
-- rule "in stock in at most one place": of two concurrent receipts of one
-- serial exactly one can insert its row.
CREATE TABLE serial_numbers (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    product_id    uuid NOT NULL REFERENCES products (id),
    serial        text NOT NULL CONSTRAINT serial_numbers_format CHECK (serial ~ '^[!-~]{1,20}$'),
    warehouse_id  uuid NOT NULL,
    location_id   uuid NOT NULL,
    lot_id        uuid,
    in_stock      boolean NOT NULL DEFAULT true,
    received_at   timestamptz NOT NULL DEFAULT now(),
    left_at       timestamptz,
    CONSTRAINT serial_numbers_location_fkey FOREIGN KEY (warehouse_id, location_id)
        REFERENCES locations (warehouse_id, id),
    CONSTRAINT serial_numbers_lot_fkey FOREIGN KEY (product_id, lot_id) REFERENCES lots (product_id, id),
    CHECK (in_stock = (left_at IS NULL))
);
CREATE UNIQUE INDEX serial_numbers_in_stock_key ON serial_numbers (product_id, serial) WHERE in_stock;
CREATE INDEX serial_numbers_serial_idx ON serial_numbers (product_id, serial, received_at DESC);

------------------------------------------------------------------------------
-- The ledger gains the position of each row.
------------------------------------------------------------------------------
ALTER TABLE stock_transactions
    ADD COLUMN location_id uuid,
    ADD COLUMN lot_id uuid,
    ADD COLUMN warehouse_balance_after bigint;

ALTER TABLE stock_transactions DISABLE TRIGGER stock_transactions_append_only;
UPDATE stock_transactions t SET location_id = l.id, warehouse_balance_after = t.balance_after
FROM locations l WHERE l.warehouse_id = t.warehouse_id AND l.code = 'DEFAULT';
ALTER TABLE stock_transactions ENABLE TRIGGER stock_transactions_append_only;

ALTER TABLE stock_transactions
    ALTER COLUMN location_id SET NOT NULL,
    ALTER COLUMN warehouse_balance_after SET NOT NULL,
    ADD CONSTRAINT stock_transactions_warehouse_balance_non_negative CHECK (warehouse_balance_after >= 0),
    ADD CONSTRAINT stock_transactions_location_fkey FOREIGN KEY (warehouse_id, location_id)
        REFERENCES locations (warehouse_id, id),
    ADD CONSTRAINT stock_transactions_lot_fkey FOREIGN KEY (product_id, lot_id)
        REFERENCES lots (product_id, id);
-- A v1-shaped ledger row (no position) belongs to the DEFAULT location, whose
-- balance is the warehouse's. Rows the engine writes carry both, so the
-- trigger does not fire for them.
CREATE FUNCTION stock_transactions_v1_position() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.location_id IS NULL THEN
        SELECT id INTO NEW.location_id FROM locations
        WHERE warehouse_id = NEW.warehouse_id AND lower(code) = 'default';
    END IF;
    NEW.warehouse_balance_after := COALESCE(NEW.warehouse_balance_after, NEW.balance_after);
    RETURN NEW;
END $$;
CREATE TRIGGER stock_transactions_v1_position BEFORE INSERT ON stock_transactions
    FOR EACH ROW WHEN (NEW.location_id IS NULL OR NEW.warehouse_balance_after IS NULL)
    EXECUTE FUNCTION stock_transactions_v1_position();
CREATE INDEX stock_transactions_lot_idx ON stock_transactions (lot_id, created_at) WHERE lot_id IS NOT NULL;
CREATE INDEX stock_transactions_serial_idx ON stock_transactions (product_id, serial, created_at)
    WHERE serial IS NOT NULL;

------------------------------------------------------------------------------
-- Scanners and counts.
------------------------------------------------------------------------------
ALTER TABLE scan_events ADD COLUMN location_id uuid REFERENCES locations (id);

-- A count may be scoped to locations (NULL = the whole warehouse) and counts
-- positions: one line per (product, location, lot). Existing lines belong to
-- the DEFAULT location.
ALTER TABLE count_sessions ADD COLUMN location_ids uuid[];
ALTER TABLE count_lines
    ADD COLUMN location_id uuid REFERENCES locations (id),
    ADD COLUMN lot_id uuid REFERENCES lots (id);
UPDATE count_lines c SET location_id = l.id
FROM count_sessions s JOIN locations l ON l.warehouse_id = s.warehouse_id AND l.code = 'DEFAULT'
WHERE s.id = c.count_id;
ALTER TABLE count_lines
    ALTER COLUMN location_id SET NOT NULL,
    DROP CONSTRAINT count_lines_pkey,
    ADD CONSTRAINT count_lines_position_key UNIQUE NULLS NOT DISTINCT (count_id, product_id, location_id, lot_id);
