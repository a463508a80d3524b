-- One product's stock as of a random instant of the last year: the SQL
-- `GET /api/v1/products/{id}/stock?as_of=` sends for a viewer
-- (src/stock/repo.rs, valued_levels with a past instant; keep in step).
\set i random(1, :products)
\set d random(1, 364)
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
WHERE TRUE
  AND s.product_id = (SELECT id FROM products WHERE sku = 'ASOF-' || :i)
  AND NOT EXISTS (SELECT 1 FROM count_sessions c
                  WHERE c.status = 'open' AND c.blind AND c.warehouse_id = s.warehouse_id
                    AND (c.product_ids IS NULL OR s.product_id = ANY(c.product_ids)))
ORDER BY s.product_id, s.warehouse_id;
