-- pgbench script: one stock movement as the API's movement engine runs it
-- (src/stock/engine): BEGIN; the load statement (level lock in one order,
-- products, warehouses, DEFAULT location, positions under the level); the
-- write statement (position, level with its version, ledger row, outbox
-- event); COMMIT. Half receipts and half issues of 1-5 units, on a random
-- product of SEED-00000001..SEED-<products> in one warehouse, no location or
-- lot named (the v1 request shape). scripts/bench.sh runs it as
--
--   pgbench -n -M prepared -c 16 -j 2 -T 20 -f bench/movement.sql \
--     -D products=5000 -D warehouse=<uuid of SEED-01> -D actor=<uuid of a user>
--
-- Differences from the API, none in its favour:
-- * The product id is a subselect on the SKU (products_sku_key) at the top of
--   each statement; the API is given the id.
-- * The API plans in Rust between the two statements (first-expiring-first
--   over the positions the load returned); here the write computes the new
--   quantity of the DEFAULT position in SQL. An issue larger than that
--   position writes nothing, as a refused API issue writes nothing.
-- * The API's statements carry array parameters (unnest) for batches and
--   empty CTEs for lots and serials; here they are scalars.
\set n random(1, :products)
\set q random(1, 5)
\set receive random(0, 1)
BEGIN;
WITH pairs AS (
    SELECT (SELECT id FROM products WHERE lower(sku) = 'seed-' || lpad(:n::text, 8, '0')) AS p,
           :warehouse::uuid AS w
),
locked AS (
    INSERT INTO stock_levels AS s (product_id, warehouse_id, quantity)
    SELECT t.p, t.w, 0 FROM pairs t
    WHERE EXISTS (SELECT 1 FROM products WHERE id = t.p)
      AND EXISTS (SELECT 1 FROM warehouses WHERE id = t.w)
    ORDER BY t.p, t.w
    ON CONFLICT (product_id, warehouse_id) DO UPDATE SET quantity = s.quantity
    RETURNING s.product_id, s.warehouse_id, s.quantity, s.version
)
SELECT 'L' AS kind, product_id AS a, warehouse_id AS b, NULL::uuid AS c, NULL::uuid AS d,
       quantity AS n, version::text AS code, NULL AS code2, NULL::bool AS flag, NULL::date AS day
FROM locked
UNION ALL
SELECT 'V', s.product_id, s.warehouse_id, NULL, NULL, NULL, s.version::text, NULL, NULL, NULL
FROM pairs t JOIN stock_levels s ON s.product_id = t.p AND s.warehouse_id = t.w
UNION ALL
SELECT 's', s.product_id, s.warehouse_id, s.location_id, s.lot_id, s.quantity,
       loc.code, lot.code, loc.active, lot.expires_on
FROM pairs t JOIN stock_positions s ON s.product_id = t.p AND s.warehouse_id = t.w
JOIN locations loc ON loc.id = s.location_id
LEFT JOIN lots lot ON lot.id = s.lot_id
UNION ALL
SELECT 'p', id, NULL, NULL, NULL, NULL, tracking, NULL, active, NULL FROM products
WHERE id = (SELECT p FROM pairs)
UNION ALL
SELECT 'w', w.id, l.id, NULL, NULL, NULL, NULL, NULL, w.active, NULL FROM warehouses w
JOIN locations l ON l.warehouse_id = w.id AND lower(l.code) = 'default'
WHERE w.id = :warehouse::uuid
UNION ALL
SELECT 'l', id, warehouse_id, NULL, NULL, NULL, code, NULL, active, NULL FROM locations
WHERE warehouse_id = :warehouse::uuid AND lower(code) = 'default';
\if :receive
\set d :q
\else
\set d -1 * :q
\endif
WITH k AS (
    SELECT (SELECT id FROM products WHERE lower(sku) = 'seed-' || lpad(:n::text, 8, '0')) AS p,
           :warehouse::uuid AS w,
           (SELECT id FROM locations WHERE warehouse_id = :warehouse::uuid AND lower(code) = 'default') AS loc
),
cur AS (
    SELECT k.*, COALESCE(s.quantity, 0) + :d::bigint AS q, v.quantity + :d::bigint AS level
    FROM k LEFT JOIN stock_positions s
      ON s.product_id = k.p AND s.warehouse_id = k.w AND s.location_id = k.loc AND s.lot_id IS NULL
    JOIN stock_levels v ON v.product_id = k.p AND v.warehouse_id = k.w
    WHERE COALESCE(s.quantity, 0) + :d::bigint >= 0
),
pos AS (
    INSERT INTO stock_positions AS s (product_id, warehouse_id, location_id, lot_id, quantity)
    SELECT p, w, loc, NULL, q FROM cur
    ON CONFLICT ON CONSTRAINT stock_positions_key
    DO UPDATE SET quantity = EXCLUDED.quantity, updated_at = now()
),
lvl AS (
    UPDATE stock_levels s SET quantity = cur.level, version = s.version + 1, updated_at = now()
    FROM cur WHERE s.product_id = cur.p AND s.warehouse_id = cur.w
),
tx AS (
    INSERT INTO stock_transactions (id, kind, product_id, warehouse_id, location_id, lot_id,
        quantity, balance_after, warehouse_balance_after, unit_cost, transfer_id, reason,
        reference, note, lot, expires_on, serial, count_id, actor_user_id, actor_device_id)
    SELECT gen_random_uuid(), CASE WHEN :d::bigint > 0 THEN 'receipt' ELSE 'issue' END, p, w, loc, NULL,
        :d::bigint, q, level, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, :actor::uuid, NULL
    FROM cur
    RETURNING id, kind, product_id, warehouse_id, location_id, lot_id, quantity, balance_after,
        warehouse_balance_after, unit_cost, transfer_id, reason, reference, note, lot, expires_on,
        serial, count_id, actor_user_id, actor_device_id, created_at
),
ev AS (
    INSERT INTO outbox (topic, aggregate_id, payload)
    SELECT 'stock.' || kind, product_id, jsonb_build_object(
        'transaction_id', id, 'kind', kind, 'product_id', product_id,
        'warehouse_id', warehouse_id, 'location_id', location_id, 'lot_id', lot_id,
        'lot', lot, 'expires_on', expires_on, 'serial', serial, 'quantity', quantity,
        'balance_after', balance_after, 'warehouse_balance_after', warehouse_balance_after,
        'transfer_id', transfer_id)
    FROM tx
)
SELECT * FROM tx;
COMMIT;
