-- Bulk ledger for `scripts/bench.sh history`: rows :from+1..:to (psql
-- variables), set-based. Rows are spread evenly over two years, oldest first;
-- every tenth row goes to one of 100 hot products (10,000 rows each at 10M),
-- the rest to any seeded product; 4 warehouses; a reference ('PO-<n>') shared
-- by 200 rows spread over the whole period. Ids are v4-shaped but increasing,
-- so the primary key is appended to instead of written at random (a load-time
-- shortcut; the API's ids are random). Balances are not consistent with the
-- levels: the listing does not read them. Foreign-key triggers are off for the
-- load (session_replication_role): every id comes from the table it points to.
SET session_replication_role = replica;
CREATE TEMP TABLE hp AS SELECT row_number() OVER (ORDER BY sku) AS n, id FROM products WHERE sku LIKE 'SEED-%';
CREATE UNIQUE INDEX ON hp (n);
-- With the triggers off, the row names its position itself: the warehouse's
-- DEFAULT location (what stock_transactions_v1_position fills in for a
-- v1-shaped row), and a warehouse balance equal to the position's.
CREATE TEMP TABLE hw AS
    SELECT row_number() OVER (ORDER BY w.code) AS n, w.id, l.id AS location_id
    FROM warehouses w JOIN locations l ON l.warehouse_id = w.id AND lower(l.code) = 'default'
    WHERE w.code LIKE 'SEED-%';
SELECT count(*) AS products FROM hp \gset
SELECT count(*) AS warehouses FROM hw \gset
SELECT id AS actor FROM users WHERE email = 'seed@inventory.invalid' \gset
INSERT INTO stock_transactions (id, kind, product_id, warehouse_id, location_id, quantity,
                                balance_after, warehouse_balance_after,
                                reference, actor_user_id, created_at)
SELECT ('00000000-0000-4000-8000-' || lpad(to_hex(i), 12, '0'))::uuid,
       CASE WHEN i % 3 = 0 THEN 'issue' ELSE 'receipt' END,
       hp.id, hw.id, hw.location_id,
       CASE WHEN i % 3 = 0 THEN -(1 + i % 5) ELSE 1 + i % 7 END,
       abs(hashint8(i)) % 1000, abs(hashint8(i)) % 1000,
       'PO-' || (i % (:to / 200)),
       :'actor',
       now() - interval '730 days' + (interval '730 days' / :to) * i
FROM generate_series(:from + 1, :to) AS i
JOIN hp ON hp.n = CASE WHEN i % 10 = 0 THEN 1 + (i / 10) % 100
                       ELSE 1 + abs(hashint8(i)) % :products END
JOIN hw ON hw.n = 1 + (i / 7) % :warehouses;
-- Every ledger row names a position (migration 20261204230001; its trigger
-- is off here too): the few seeded products without stock in a warehouse
-- get a level and a DEFAULT position at zero for the rows just written
-- (the DEFAULT unlotted position's quantity is kept on its level: NULL in
-- its row, migration 20261205070001).
SELECT ('00000000-0000-4000-8000-' || lpad(to_hex(:from + 1), 12, '0'))::uuid AS first_id,
       ('00000000-0000-4000-8000-' || lpad(to_hex(:to), 12, '0'))::uuid AS last_id \gset
INSERT INTO stock_levels (product_id, warehouse_id, quantity)
SELECT DISTINCT product_id, warehouse_id, 0 FROM stock_transactions
WHERE id BETWEEN :'first_id' AND :'last_id'
ON CONFLICT DO NOTHING;
INSERT INTO stock_positions (product_id, warehouse_id, location_id, quantity)
SELECT DISTINCT product_id, warehouse_id, location_id, NULL::bigint FROM stock_transactions
WHERE id BETWEEN :'first_id' AND :'last_id'
ON CONFLICT ON CONSTRAINT stock_positions_key DO NOTHING;
