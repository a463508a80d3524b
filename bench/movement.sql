-- pgbench script: one stock movement as the API posts a v1-shaped receive or
-- issue (no location, lot, serial or reservation named; no Idempotency-Key):
-- ONE statement, the engine's one-statement path (src/stock/engine/fast.rs,
-- the function stock_move_default of migration 20261202220001), in
-- autocommit as the API sends it. Half receipts and half issues of 1-5 units
-- on a random product of SEED-00000001..SEED-<products> in one warehouse.
-- scripts/bench.sh runs it as
--
--   pgbench -n -M prepared -c 16 -j 2 -T 20 -f bench/movement.sql \
--     -D products=5000 -D warehouse=<uuid of SEED-01> -D actor=<uuid of a user>
--
-- The only difference from the API, not in its favour: the product id is a
-- subselect on the SKU (products_sku_key); the API is given the id. An issue
-- larger than the stock changes nothing here; the API then runs the general
-- path to word the refusal (the bench's issues are small against seeded stock,
-- so that is rare).
\set n random(1, :products)
\set q random(1, 5)
\set receive random(0, 1)
\if :receive
\set d :q
\else
\set d -1 * :q
\endif
SELECT * FROM stock_move_default(
    gen_random_uuid(), CASE WHEN :d::bigint > 0 THEN 'receipt' ELSE 'issue' END,
    (SELECT id FROM products WHERE lower(sku) = 'seed-' || lpad(:n::text, 8, '0')),
    :warehouse::uuid, :d::bigint, NULL, NULL, NULL, NULL, :actor::uuid, NULL);
