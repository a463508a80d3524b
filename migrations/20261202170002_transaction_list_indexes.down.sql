DROP INDEX IF EXISTS stock_transactions_reference_idx;
DROP INDEX IF EXISTS stock_transactions_product_idx;
