-- Seeds the as-of benchmark (scripts/bench.sh asof): :products products, each
-- held in 2 warehouses, and :per_level ledger rows per (product, warehouse)
-- level over the last year (2 × 100,000 × 50 = 10,000,000 rows by default).
-- Rows are generated week by week over every level (the physical order of a
-- real ledger: interleaved in time, not clustered per product); receipts of
-- 10 and issues of 5 alternate, each row carrying the balance and value the
-- engine would have written. The levels end where their ledger ends.
\set ON_ERROR_STOP on
INSERT INTO users (email, email_normalized, display_name, role, password_hash)
VALUES ('asof-bench@bench.invalid', 'asof-bench@bench.invalid', 'As-of bench', 'clerk', '!');
INSERT INTO warehouses (code, name) VALUES ('ASOF-1', 'As-of 1'), ('ASOF-2', 'As-of 2');
INSERT INTO products (sku, name, unit_cost)
SELECT 'ASOF-' || i, 'As-of product ' || i, 1 + (i % 100) / 100.0
FROM generate_series(1, :products) AS i;

-- Levels first (the ledger's rows and the levels are both final here): the
-- v1 trigger puts each level's stock at its warehouse's DEFAULT location.
INSERT INTO stock_levels (product_id, warehouse_id, quantity, unit_cost, value)
SELECT p.id, w.id, b.q, p.unit_cost, b.q * p.unit_cost
FROM products p
CROSS JOIN warehouses w
CROSS JOIN LATERAL (SELECT 10 * ((:per_level + 1) / 2) - 5 * (:per_level / 2) AS q) b
WHERE p.sku LIKE 'ASOF-%' AND w.code LIKE 'ASOF-%';

INSERT INTO stock_transactions (kind, product_id, warehouse_id, location_id, quantity, balance_after,
                                warehouse_balance_after, unit_cost, value_after, actor_user_id, created_at)
SELECT CASE WHEN k % 2 = 1 THEN 'receipt' ELSE 'issue' END, p.id, w.id, l.id,
       CASE WHEN k % 2 = 1 THEN 10 ELSE -5 END, b.q, b.q, p.unit_cost, b.q * p.unit_cost, u.id,
       now() - interval '365 days' + (k - 1) * (interval '358 days' / :per_level)
             + (p.n % 86400) * interval '1 second'
FROM generate_series(1, :per_level) AS k
CROSS JOIN (SELECT id, unit_cost, substr(sku, 6)::int AS n FROM products WHERE sku LIKE 'ASOF-%') p
CROSS JOIN warehouses w
JOIN locations l ON l.warehouse_id = w.id AND l.code = 'DEFAULT'
CROSS JOIN LATERAL (SELECT 10 * ((k + 1) / 2) - 5 * (k / 2) AS q) b
CROSS JOIN (SELECT id FROM users WHERE email = 'asof-bench@bench.invalid') u
WHERE w.code LIKE 'ASOF-%';
