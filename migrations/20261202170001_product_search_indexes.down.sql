DROP INDEX IF EXISTS products_search_rest_trgm_idx;
DROP INDEX IF EXISTS products_sku_infix_trgm_idx;
DROP INDEX IF EXISTS products_category_sku_order_idx;
DROP INDEX IF EXISTS products_sku_order_idx;
