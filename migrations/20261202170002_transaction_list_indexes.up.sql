-- The ledger list (`GET /api/v1/transactions`) reads newest first, keyset on
-- (created_at DESC, id DESC); each filter needs an index ending in that order
-- so a page is LIMIT rows read in order, on page 1 as deep in the chain.
-- stock_transactions_level_idx leads with (product_id, warehouse_id): for a
-- product alone the planner read all of the product's rows in every warehouse
-- and sorted them (p99 494 ms for a product with 10,000 rows in 10M).
CREATE INDEX stock_transactions_product_idx ON stock_transactions (product_id, created_at DESC, id DESC);
-- The new `reference` filter (exact match). Partial: most rows have none.
CREATE INDEX stock_transactions_reference_idx ON stock_transactions (reference, created_at DESC, id DESC)
    WHERE reference IS NOT NULL;
