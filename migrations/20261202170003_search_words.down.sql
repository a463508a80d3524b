DROP TRIGGER IF EXISTS products_search_words_update ON products;
DROP TRIGGER IF EXISTS products_search_words_insert ON products;
DROP FUNCTION IF EXISTS search_words_add();
DROP FUNCTION IF EXISTS search_words_of(text);
DROP TABLE IF EXISTS search_words;
