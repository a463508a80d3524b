-- pgbench script: one stock movement, the same single statement (autocommit)
-- the API runs per POST /api/v1/stock/receive or /issue (src/stock/repo.rs,
-- leg_sql with ADD_LEVEL or TAKE_LEVEL), half receipts and half issues of
-- 1-5 units, on a random product of SEED-00000001..SEED-<products> in one
-- warehouse. scripts/bench.sh runs it as
--
--   pgbench -n -M prepared -c 16 -j 2 -T 20 -f bench/movement.sql \
--     -D products=5000 -D warehouse=<uuid of SEED-01> -D actor=<uuid of a user>
--
-- Differences from the API's statement, all in the parameters:
-- * $1 (product id) is the subselect on the SKU below, at each of its three
--   places: three extra lookups on the products_sku_key index (lower(sku)) per
--   movement that the API does not do (it is given the id), so this slightly
--   favours the API. `lower(sku)` is what that unique index covers.
-- * $2, $3, $14 are pgbench variables with the casts the API's typed binds
--   imply (uuid, bigint, uuid); $4 is the literal kind; $5-$13 and $15 are the
--   NULLs a plain receive/issue binds.
-- * Issues refused for lack of stock update nothing and return no row; the
--   API then runs one more query to explain the 409 (why_refused).
\set n random(1, :products)
\set q random(1, 5)
\set receive random(0, 1)
\if :receive
WITH ok AS (
             -- Archived products and inactive warehouses take no movements.
             SELECT 1 FROM products p, warehouses w
             WHERE p.id = (SELECT id FROM products WHERE lower(sku) = 'seed-' || lpad(:n::text, 8, '0')) AND p.active AND w.id = :warehouse::uuid AND w.active
         ),
         lvl AS (
    INSERT INTO stock_levels AS s (product_id, warehouse_id, quantity)
    SELECT (SELECT id FROM products WHERE lower(sku) = 'seed-' || lpad(:n::text, 8, '0')), :warehouse::uuid, :q::bigint FROM ok
    ON CONFLICT (product_id, warehouse_id)
    DO UPDATE SET quantity = s.quantity + EXCLUDED.quantity, updated_at = now()
    RETURNING s.quantity),
         tx AS (
             INSERT INTO stock_transactions (kind, product_id, warehouse_id, quantity, balance_after,
                 unit_cost, transfer_id, reason, reference, note, lot, expires_on, serial, count_id,
                 actor_user_id, actor_device_id)
             SELECT 'receipt', (SELECT id FROM products WHERE lower(sku) = 'seed-' || lpad(:n::text, 8, '0')), :warehouse::uuid, :q::bigint, lvl.quantity, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, :actor::uuid, NULL FROM lvl
             RETURNING id, kind, product_id, warehouse_id, quantity, balance_after, unit_cost, transfer_id, reason, reference, note, lot, expires_on, serial, count_id, actor_user_id, actor_device_id, created_at
         ),
         ev AS (
             INSERT INTO outbox (topic, aggregate_id, payload)
             SELECT 'stock.' || kind, product_id, jsonb_build_object(
                 'transaction_id', id, 'kind', kind, 'product_id', product_id,
                 'warehouse_id', warehouse_id, 'quantity', quantity, 'balance_after', balance_after,
                 'transfer_id', transfer_id)
             FROM tx
         )
         SELECT id, kind, product_id, warehouse_id, quantity, balance_after, unit_cost, transfer_id, reason, reference, note, lot, expires_on, serial, count_id, actor_user_id, actor_device_id, created_at FROM tx;
\else
\set d -1 * :q
WITH ok AS (
             -- Archived products and inactive warehouses take no movements.
             SELECT 1 FROM products p, warehouses w
             WHERE p.id = (SELECT id FROM products WHERE lower(sku) = 'seed-' || lpad(:n::text, 8, '0')) AND p.active AND w.id = :warehouse::uuid AND w.active
         ),
         lvl AS (
    UPDATE stock_levels AS s SET quantity = s.quantity + :d::bigint, updated_at = now()
    FROM ok
    WHERE s.product_id = (SELECT id FROM products WHERE lower(sku) = 'seed-' || lpad(:n::text, 8, '0')) AND s.warehouse_id = :warehouse::uuid AND s.quantity + :d::bigint >= 0
    RETURNING s.quantity),
         tx AS (
             INSERT INTO stock_transactions (kind, product_id, warehouse_id, quantity, balance_after,
                 unit_cost, transfer_id, reason, reference, note, lot, expires_on, serial, count_id,
                 actor_user_id, actor_device_id)
             SELECT 'issue', (SELECT id FROM products WHERE lower(sku) = 'seed-' || lpad(:n::text, 8, '0')), :warehouse::uuid, :d::bigint, lvl.quantity, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, :actor::uuid, NULL FROM lvl
             RETURNING id, kind, product_id, warehouse_id, quantity, balance_after, unit_cost, transfer_id, reason, reference, note, lot, expires_on, serial, count_id, actor_user_id, actor_device_id, created_at
         ),
         ev AS (
             INSERT INTO outbox (topic, aggregate_id, payload)
             SELECT 'stock.' || kind, product_id, jsonb_build_object(
                 'transaction_id', id, 'kind', kind, 'product_id', product_id,
                 'warehouse_id', warehouse_id, 'quantity', quantity, 'balance_after', balance_after,
                 'transfer_id', transfer_id)
             FROM tx
         )
         SELECT id, kind, product_id, warehouse_id, quantity, balance_after, unit_cost, transfer_id, reason, reference, note, lot, expires_on, serial, count_id, actor_user_id, actor_device_id, created_at FROM tx;
\endif
