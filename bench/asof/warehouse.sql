-- One warehouse's valuation (every product) as of a random instant of the
-- last year: the two statements of the first page of
-- `GET /api/v1/stock/valuation?as_of=&warehouse_id=` (src/stock/repo.rs,
-- valuation_totals and valued_levels with a past instant; keep in step).
\set d random(1, 364)
SELECT COALESCE(sum(quantity), 0)::bigint, COALESCE(sum(value), 0) FROM (SELECT
       t.warehouse_balance_after AS quantity, NULL::bigint AS reserved,
       COALESCE(t.value_after, t.warehouse_balance_after * p.unit_cost) AS value,
       CASE WHEN t.value_after IS NULL THEN p.unit_cost
            WHEN t.quantity > 0 THEN NULL
            ELSE t.unit_cost END AS unit_cost
FROM stock_levels s
JOIN products p ON p.id = s.product_id
JOIN warehouses w ON w.id = s.warehouse_id
CROSS JOIN LATERAL (
    SELECT t.warehouse_balance_after, t.quantity, t.unit_cost, t.value_after
    FROM stock_transactions t
    WHERE t.product_id = s.product_id AND t.warehouse_id = s.warehouse_id
      AND t.created_at <= now() - :d * interval '1 day'
    ORDER BY t.created_at DESC, t.id DESC LIMIT 1
) t
WHERE TRUE AND t.warehouse_balance_after > 0
  AND s.warehouse_id = (SELECT id FROM warehouses WHERE code = 'ASOF-1')) v;
SELECT s.product_id, p.sku, s.warehouse_id, w.code AS warehouse_code,
       t.warehouse_balance_after AS quantity, NULL::bigint AS reserved,
       COALESCE(t.value_after, t.warehouse_balance_after * p.unit_cost) AS value,
       CASE WHEN t.value_after IS NULL THEN p.unit_cost
            WHEN t.quantity > 0 THEN NULL
            ELSE t.unit_cost END AS unit_cost
FROM stock_levels s
JOIN products p ON p.id = s.product_id
JOIN warehouses w ON w.id = s.warehouse_id
CROSS JOIN LATERAL (
    SELECT t.warehouse_balance_after, t.quantity, t.unit_cost, t.value_after
    FROM stock_transactions t
    WHERE t.product_id = s.product_id AND t.warehouse_id = s.warehouse_id
      AND t.created_at <= now() - :d * interval '1 day'
    ORDER BY t.created_at DESC, t.id DESC LIMIT 1
) t
WHERE TRUE AND t.warehouse_balance_after > 0
  AND s.warehouse_id = (SELECT id FROM warehouses WHERE code = 'ASOF-1')
ORDER BY s.product_id, s.warehouse_id LIMIT 51;
