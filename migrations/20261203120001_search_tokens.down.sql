DROP TRIGGER IF EXISTS products_search_tokens_update ON products;
DROP TRIGGER IF EXISTS products_search_tokens_insert ON products;
DROP FUNCTION IF EXISTS search_tokens_add();
DROP TABLE IF EXISTS search_tokens;
DROP INDEX IF EXISTS products_search_tokens_idx;
DROP FUNCTION IF EXISTS search_tokens_of(text);
