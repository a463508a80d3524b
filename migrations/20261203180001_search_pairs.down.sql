DROP TRIGGER IF EXISTS products_search_pairs_delete ON products;
DROP TRIGGER IF EXISTS products_search_pairs_update ON products;
DROP TRIGGER IF EXISTS products_search_pairs_insert ON products;
DROP FUNCTION IF EXISTS search_pairs_delete();
DROP FUNCTION IF EXISTS search_pairs_update();
DROP FUNCTION IF EXISTS search_pairs_insert();
DROP TABLE IF EXISTS product_search_pairs;
DROP FUNCTION IF EXISTS search_pairs_of(text);
