-- Terms of several words ("copper hinge") found by word instead of by
-- trigram. The trigram index answers them exactly but slowly at size: every
-- trigram of the term, among them the common ones spanning a space ("er ",
-- " h"), is a long posting list to intersect, 16-20 ms at 1,000,000 products
-- before the heap is read (bench/README.md, "Search").
--
-- A token is a maximal run of ASCII letters and digits of search_text (which
-- is lower-cased). When search_text contains a term, each token of the term
-- that has a separator on both sides in the term is a whole token of the
-- text, the first one (a separator after it) is the end of a token, the last
-- one (a separator before it) is the start of a token. So a product matching
-- the term has, for each of those, a token from the vocabulary below that
-- equals / ends with / starts with it: a necessary condition the GIN index
-- answers with one short posting list per word, after which the LIKE decides
-- (src/catalog/repo.rs `by_tokens`). Only tokens with a letter are indexed:
-- digit runs are unique per product (barcodes, SKU numbers) and would make
-- the index as large as the catalog for nothing a word search needs.
CREATE FUNCTION search_tokens_of(p_text text) RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT COALESCE(array_agg(DISTINCT t), '{}')
    FROM regexp_split_to_table(p_text, '[^a-z0-9]+') AS t
    WHERE t ~ '[a-z]'
$$;

CREATE INDEX products_search_tokens_idx ON products USING gin (search_tokens_of(search_text));

-- Every token ever indexed, to expand a term's first and last token into the
-- tokens ending / starting with them. Insert-only, like search_words: a token
-- no product carries any more only widens a condition the LIKE then decides.
-- Byte order (COLLATE "C") so a prefix is one range of the primary key, and
-- of the reversed index for a suffix.
CREATE TABLE search_tokens (
    token text COLLATE "C" PRIMARY KEY
);
CREATE INDEX search_tokens_reversed_idx ON search_tokens (reverse(token));

-- Statement-level, so a bulk insert adds each new token once.
CREATE FUNCTION search_tokens_add() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO search_tokens (token)
    SELECT DISTINCT t FROM changed, unnest(search_tokens_of(changed.search_text)) AS t
    ON CONFLICT DO NOTHING;
    RETURN NULL;
END $$;
CREATE TRIGGER products_search_tokens_insert AFTER INSERT ON products
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION search_tokens_add();
CREATE TRIGGER products_search_tokens_update AFTER UPDATE ON products
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION search_tokens_add();

INSERT INTO search_tokens (token)
SELECT DISTINCT t FROM products, unnest(search_tokens_of(products.search_text)) AS t
ON CONFLICT DO NOTHING;
ANALYZE search_tokens;
ANALYZE products;
