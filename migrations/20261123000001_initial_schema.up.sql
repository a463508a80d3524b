-- Inventory API v1 schema.
--
-- The database holds the invariants; Rust only turns their violations into
-- friendly messages. Constraint names are part of the contract: src/error.rs
-- maps them (on_constraint) to 409/422 problem types.

-- Trigram indexes make `ILIKE '%term%'` product search use an index (GIN)
-- instead of a sequential scan, which keeps search fast on a million products.
CREATE EXTENSION IF NOT EXISTS pg_trgm;

-- Shared trigger: keep updated_at honest without trusting every UPDATE statement.
CREATE FUNCTION touch_updated_at() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END $$;

------------------------------------------------------------------------------
-- Users and sessions
------------------------------------------------------------------------------
CREATE TABLE users (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    email         text NOT NULL CHECK (length(email) BETWEEN 3 AND 254 AND position('@' IN email) > 1),
    display_name  text NOT NULL CHECK (length(display_name) BETWEEN 1 AND 100),
    role          text NOT NULL CHECK (role IN ('admin', 'manager', 'clerk', 'viewer')),
    password_hash text NOT NULL,
    active        boolean NOT NULL DEFAULT true,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);
-- Email is unique regardless of case: Alice@x and alice@x are one person.
CREATE UNIQUE INDEX users_email_key ON users (lower(email));
CREATE TRIGGER users_touch BEFORE UPDATE ON users FOR EACH ROW EXECUTE FUNCTION touch_updated_at();

-- Refresh tokens are opaque random strings; only their SHA-256 is stored.
-- Tokens issued by rotation share a family_id, so presenting a retired token
-- (theft) can revoke the whole family in one UPDATE.
CREATE TABLE refresh_tokens (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    family_id   uuid NOT NULL,
    user_id     uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_hash  bytea NOT NULL CONSTRAINT refresh_tokens_hash_key UNIQUE,
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz,
    revoked_at  timestamptz,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX refresh_tokens_family_idx ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_user_idx ON refresh_tokens (user_id);

------------------------------------------------------------------------------
-- Catalog
------------------------------------------------------------------------------
CREATE TABLE categories (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name        text NOT NULL CHECK (length(btrim(name)) BETWEEN 1 AND 100),
    parent_id   uuid REFERENCES categories (id) ON DELETE RESTRICT,
    version     integer NOT NULL DEFAULT 1,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT categories_not_own_parent CHECK (parent_id IS DISTINCT FROM id)
);
-- Sibling names are unique case-insensitively; top-level categories are siblings too.
CREATE UNIQUE INDEX categories_sibling_name_key
    ON categories (COALESCE(parent_id, '00000000-0000-0000-0000-000000000000'::uuid), lower(name));
CREATE INDEX categories_parent_idx ON categories (parent_id);
CREATE TRIGGER categories_touch BEFORE UPDATE ON categories FOR EACH ROW EXECUTE FUNCTION touch_updated_at();

-- The category tree must stay a tree: refuse a parent that is the category itself
-- or one of its descendants.
CREATE FUNCTION categories_refuse_cycle() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.parent_id IS NOT NULL AND EXISTS (
        WITH RECURSIVE ancestors(id) AS (
            SELECT NEW.parent_id
            UNION
            SELECT c.parent_id FROM categories c JOIN ancestors a ON c.id = a.id
            WHERE c.parent_id IS NOT NULL
        )
        SELECT 1 FROM ancestors WHERE id = NEW.id
    ) THEN
        RAISE EXCEPTION 'category % cannot be its own ancestor', NEW.id
            USING ERRCODE = 'check_violation', CONSTRAINT = 'categories_no_cycle';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER categories_no_cycle BEFORE INSERT OR UPDATE OF parent_id ON categories
    FOR EACH ROW EXECUTE FUNCTION categories_refuse_cycle();

CREATE TABLE products (
    id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    sku               text NOT NULL CONSTRAINT products_sku_format
                          CHECK (sku ~ '^[A-Za-z0-9][A-Za-z0-9._/-]{0,63}$'),
    name              text NOT NULL CHECK (length(btrim(name)) BETWEEN 1 AND 200),
    description       text NOT NULL DEFAULT '' CHECK (length(description) <= 4000),
    category_id       uuid REFERENCES categories (id) ON DELETE RESTRICT,
    unit              text NOT NULL DEFAULT 'each' CHECK (length(btrim(unit)) BETWEEN 1 AND 20),
    -- Money is exact: numeric, never float.
    unit_cost         numeric(14, 4) NOT NULL DEFAULT 0 CHECK (unit_cost >= 0),
    price             numeric(14, 4) NOT NULL DEFAULT 0 CHECK (price >= 0),
    reorder_point     integer NOT NULL DEFAULT 0 CHECK (reorder_point >= 0),
    reorder_quantity  integer NOT NULL DEFAULT 0 CHECK (reorder_quantity >= 0),
    active            boolean NOT NULL DEFAULT true,
    -- Optimistic concurrency: bumped on every change, exposed as the ETag.
    version           integer NOT NULL DEFAULT 1,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now()
);
-- SKU is unique case-insensitively ("ab-1" and "AB-1" are one product).
CREATE UNIQUE INDEX products_sku_key ON products (lower(sku));
CREATE INDEX products_category_idx ON products (category_id);
-- pg_trgm GIN indexes serve the case-insensitive `q` search on SKU and name
-- (ILIKE '%term%'); a B-tree cannot serve infix matches.
CREATE INDEX products_sku_trgm_idx ON products USING gin (sku gin_trgm_ops);
CREATE INDEX products_name_trgm_idx ON products USING gin (name gin_trgm_ops);
CREATE TRIGGER products_touch BEFORE UPDATE ON products FOR EACH ROW EXECUTE FUNCTION touch_updated_at();

-- A barcode identifies exactly one product. lookup_key is the normalised form
-- (GTIN-8/12/13/14 all padded to 14 digits; other symbologies as scanned), so an
-- EAN-13 scanned as a GTIN-14 finds the same product.
CREATE TABLE product_barcodes (
    lookup_key     text PRIMARY KEY,
    barcode        text NOT NULL CHECK (length(barcode) BETWEEN 1 AND 128),
    symbology      text NOT NULL CHECK (symbology IN ('gtin8', 'gtin12', 'gtin13', 'gtin14', 'other')),
    product_id     uuid NOT NULL REFERENCES products (id) ON DELETE CASCADE,
    -- A case barcode may stand for 12 units.
    pack_quantity  integer NOT NULL DEFAULT 1 CONSTRAINT product_barcodes_pack_quantity_positive CHECK (pack_quantity > 0),
    created_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX product_barcodes_product_idx ON product_barcodes (product_id);
CREATE INDEX product_barcodes_trgm_idx ON product_barcodes USING gin (barcode gin_trgm_ops);

------------------------------------------------------------------------------
-- Warehouses and stock
------------------------------------------------------------------------------
CREATE TABLE warehouses (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    code        text NOT NULL CONSTRAINT warehouses_code_format
                    CHECK (code ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$'),
    name        text NOT NULL CHECK (length(btrim(name)) BETWEEN 1 AND 200),
    address     text NOT NULL DEFAULT '' CHECK (length(address) <= 1000),
    active      boolean NOT NULL DEFAULT true,
    version     integer NOT NULL DEFAULT 1,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX warehouses_code_key ON warehouses (lower(code));
CREATE TRIGGER warehouses_touch BEFORE UPDATE ON warehouses FOR EACH ROW EXECUTE FUNCTION touch_updated_at();

-- The current quantity of a product in a warehouse. Never negative: the CHECK is
-- the last line of defence behind the guarded UPDATE in src/stock/repo.rs.
CREATE TABLE stock_levels (
    product_id    uuid NOT NULL REFERENCES products (id),
    warehouse_id  uuid NOT NULL REFERENCES warehouses (id),
    quantity      bigint NOT NULL DEFAULT 0 CONSTRAINT stock_levels_quantity_non_negative CHECK (quantity >= 0),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (product_id, warehouse_id)
);
CREATE INDEX stock_levels_warehouse_idx ON stock_levels (warehouse_id, product_id);

------------------------------------------------------------------------------
-- Scanner devices (principals that post scan events)
------------------------------------------------------------------------------
CREATE TABLE devices (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name          text NOT NULL CHECK (length(btrim(name)) BETWEEN 1 AND 100),
    -- The first characters of the key, shown in lists so a person can tell keys apart.
    key_prefix    text NOT NULL,
    key_hash      bytea NOT NULL CONSTRAINT devices_key_hash_key UNIQUE,
    created_by    uuid REFERENCES users (id),
    created_at    timestamptz NOT NULL DEFAULT now(),
    last_seen_at  timestamptz,
    revoked_at    timestamptz
);

CREATE TABLE device_warehouses (
    device_id     uuid NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    warehouse_id  uuid NOT NULL REFERENCES warehouses (id),
    PRIMARY KEY (device_id, warehouse_id)
);

------------------------------------------------------------------------------
-- Count sessions (stocktakes)
------------------------------------------------------------------------------
CREATE TABLE count_sessions (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    warehouse_id  uuid NOT NULL REFERENCES warehouses (id),
    status        text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'completed', 'cancelled')),
    -- Blind counts hide expected quantities from the counters.
    blind         boolean NOT NULL DEFAULT false,
    -- NULL means the whole warehouse.
    product_ids   uuid[],
    created_by    uuid REFERENCES users (id),
    opened_at     timestamptz NOT NULL DEFAULT now(),
    closed_at     timestamptz,
    closed_by     uuid REFERENCES users (id),
    CHECK ((status = 'open') = (closed_at IS NULL))
);
CREATE INDEX count_sessions_warehouse_idx ON count_sessions (warehouse_id, opened_at DESC);

-- expected_quantity is the level when the session opened; movements posted
-- after that are added back at completion so a receipt during the count is kept.
CREATE TABLE count_lines (
    count_id           uuid NOT NULL REFERENCES count_sessions (id) ON DELETE CASCADE,
    product_id         uuid NOT NULL REFERENCES products (id),
    expected_quantity  bigint NOT NULL CHECK (expected_quantity >= 0),
    counted_quantity   bigint CHECK (counted_quantity >= 0),
    counted_at         timestamptz,
    counted_by_user    uuid REFERENCES users (id),
    counted_by_device  uuid REFERENCES devices (id),
    PRIMARY KEY (count_id, product_id)
);

------------------------------------------------------------------------------
-- The ledger
------------------------------------------------------------------------------
CREATE TABLE stock_transactions (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    kind             text NOT NULL CHECK (kind IN ('receipt', 'issue', 'adjustment', 'transfer_out',
                                                   'transfer_in', 'count_adjustment')),
    product_id       uuid NOT NULL REFERENCES products (id),
    warehouse_id     uuid NOT NULL REFERENCES warehouses (id),
    -- Signed: positive adds stock, negative removes it.
    quantity         bigint NOT NULL CHECK (quantity <> 0),
    balance_after    bigint NOT NULL CHECK (balance_after >= 0),
    unit_cost        numeric(14, 4) CHECK (unit_cost >= 0),
    -- Both rows of a transfer share it.
    transfer_id      uuid,
    reason           text CHECK (reason IN ('damaged', 'lost', 'found', 'correction', 'expired', 'other')),
    reference        text CHECK (length(reference) <= 200),
    note             text CHECK (length(note) <= 2000),
    lot              text CHECK (length(lot) <= 20),
    expires_on       date,
    serial           text CHECK (length(serial) <= 20),
    count_id         uuid REFERENCES count_sessions (id),
    actor_user_id    uuid REFERENCES users (id),
    actor_device_id  uuid REFERENCES devices (id),
    created_at       timestamptz NOT NULL DEFAULT now(),
    -- Every movement has exactly one author.
    CONSTRAINT stock_transactions_one_actor CHECK (num_nonnulls(actor_user_id, actor_device_id) = 1),
    CONSTRAINT stock_transactions_transfer_has_id
        CHECK ((kind IN ('transfer_out', 'transfer_in')) = (transfer_id IS NOT NULL)),
    CONSTRAINT stock_transactions_sign CHECK (
        (kind IN ('receipt', 'transfer_in') AND quantity > 0) OR
        (kind IN ('issue', 'transfer_out') AND quantity < 0) OR
        kind IN ('adjustment', 'count_adjustment'))
);
-- History of one level, newest first.
CREATE INDEX stock_transactions_level_idx ON stock_transactions (product_id, warehouse_id, created_at DESC, id DESC);
-- The global feed, newest first (keyset pagination on (created_at, id)).
CREATE INDEX stock_transactions_created_idx ON stock_transactions (created_at DESC, id DESC);
CREATE INDEX stock_transactions_warehouse_idx ON stock_transactions (warehouse_id, created_at DESC);
CREATE INDEX stock_transactions_transfer_idx ON stock_transactions (transfer_id) WHERE transfer_id IS NOT NULL;

-- The ledger is append-only: a mistake is corrected by a new row, never by
-- editing history. Refused here so that no code path (or psql session) can.
CREATE FUNCTION stock_transactions_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'stock_transactions is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER stock_transactions_append_only
    BEFORE UPDATE OR DELETE ON stock_transactions
    FOR EACH ROW EXECUTE FUNCTION stock_transactions_refuse_change();
CREATE TRIGGER stock_transactions_no_truncate
    BEFORE TRUNCATE ON stock_transactions
    FOR EACH STATEMENT EXECUTE FUNCTION stock_transactions_refuse_change();

------------------------------------------------------------------------------
-- Idempotency: the first response to (principal, key) is stored in the same
-- transaction as the change it describes, so a retry can never apply twice.
------------------------------------------------------------------------------
CREATE TABLE idempotency_keys (
    principal_id     uuid NOT NULL,
    key              text NOT NULL CHECK (length(key) BETWEEN 1 AND 200),
    -- SHA-256 of method, path and body: the same key with another request is refused.
    request_hash     bytea NOT NULL,
    response_status  smallint NOT NULL,
    response_body    bytea NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (principal_id, key)
);
-- The 24 h expiry job deletes by age.
CREATE INDEX idempotency_keys_created_idx ON idempotency_keys (created_at);

------------------------------------------------------------------------------
-- Scan events: what each device sent, with its first outcome, so a resent
-- event replays that outcome instead of moving stock again.
------------------------------------------------------------------------------
CREATE TABLE scan_events (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    device_id       uuid NOT NULL REFERENCES devices (id),
    event_id        uuid NOT NULL,
    barcode         text NOT NULL,
    action          text NOT NULL CHECK (action IN ('receive', 'issue', 'count', 'lookup')),
    quantity        integer NOT NULL,
    warehouse_id    uuid,
    count_id        uuid,
    scanned_at      timestamptz,
    received_at     timestamptz NOT NULL DEFAULT now(),
    status          text NOT NULL CHECK (status IN ('applied', 'rejected')),
    reason          text,
    product_id      uuid REFERENCES products (id),
    transaction_id  uuid REFERENCES stock_transactions (id),
    lot             text,
    expires_on      date,
    serial          text,
    -- The answer given the first time, returned verbatim (status duplicate) on a resend.
    response        jsonb NOT NULL,
    CONSTRAINT scan_events_device_event_key UNIQUE (device_id, event_id)
);
CREATE INDEX scan_events_status_idx ON scan_events (status, received_at DESC);

------------------------------------------------------------------------------
-- Transactional outbox: written in the same transaction as the change, relayed
-- to Redis afterwards, so an event is delayed (never lost) when Redis is down.
------------------------------------------------------------------------------
CREATE TABLE outbox (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    topic         text NOT NULL,
    aggregate_id  uuid,
    payload       jsonb NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    published_at  timestamptz
);
CREATE INDEX outbox_unpublished_idx ON outbox (id) WHERE published_at IS NULL;
