-- The words of product names, for spelling correction: when nothing contains
-- a search term, each word of it is replaced by the most similar word here
-- (pg_trgm `%`, similarity >= pg_trgm.similarity_threshold, 0.3 by default)
-- and the search runs once more. Looking up a few thousand distinct words is
-- fast; a similarity search over a million names is not (a misspelt common
-- word has tens of thousands of similar rows to rank).
--
-- Insert-only: a word stays when the last name using it changes. It can then
-- only lead to a corrected search that finds nothing, which is what the
-- uncorrected search found.
CREATE TABLE search_words (
    word text PRIMARY KEY
);
CREATE INDEX search_words_trgm_idx ON search_words USING gin (word gin_trgm_ops);

-- Letters-only words of 4 or more characters, lower-cased (shorter ones are
-- not corrected: too many words are a letter apart from them).
CREATE FUNCTION search_words_of(p_name text) RETURNS SETOF text
LANGUAGE sql IMMUTABLE AS $$
    SELECT w FROM regexp_split_to_table(lower(p_name), '[^[:alpha:]]+') AS w WHERE length(w) >= 4
$$;

-- Statement-level, so a bulk insert adds each new word once.
CREATE FUNCTION search_words_add() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO search_words (word)
    SELECT DISTINCT w FROM changed, search_words_of(changed.name) AS w
    ON CONFLICT DO NOTHING;
    RETURN NULL;
END $$;
CREATE TRIGGER products_search_words_insert AFTER INSERT ON products
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION search_words_add();
CREATE TRIGGER products_search_words_update AFTER UPDATE ON products
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION search_words_add();

INSERT INTO search_words (word)
SELECT DISTINCT w FROM products, search_words_of(products.name) AS w
ON CONFLICT DO NOTHING;
ANALYZE search_words;
