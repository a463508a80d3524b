-- Terms of several words ("copper hinge") found by a pair of adjacent words,
-- in list order. The word index (20261203120001) narrows such a term to the
-- products carrying both words, but those candidates still have to be read
-- from the catalog to be sorted into list order: "copper hinge" over
-- 1,000,000 products is 1,667 candidates, two posting lists of 50,000 and
-- 33,000 intersected (3 ms) and 1,626 heap pages read (4 ms) for a page of 50.
--
-- When search_text contains "copper hinge", the token ending with "copper"
-- and the token starting with "hinge" are adjacent tokens of the text (only
-- separators between). So the product carries the pair "<x> <y>" for some x
-- of the vocabulary ending with "copper" and y starting with "hinge": a
-- necessary condition, like the word index's, after which the LIKE decides.
-- Kept with the list key `k` (lower(sku) in byte order, the products' list
-- order) and the product's id in one index, a pair's products are read from
-- the index alone, already sorted, and only a page of them is read from the
-- catalog (src/catalog/repo.rs `by_pairs`).
--
-- Tokens as in search_tokens_of: maximal runs of ASCII letters and digits;
-- only pairs of two tokens with a letter are kept (digit runs are SKU numbers
-- and barcodes: a pair with one is nearly unique per product).
--
-- PL/pgSQL over one split: 10 us a row, half of a set-returning SQL version
-- (the import of 100,000 products pays it per row).
CREATE FUNCTION search_pairs_of(p_text text) RETURNS text[]
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
    w text[] := string_to_array(btrim(regexp_replace(p_text, '[^a-z0-9]+', ' ', 'g')), ' ');
    pairs text[] := '{}';
    pair text;
BEGIN
    FOR i IN 1 .. coalesce(array_length(w, 1), 0) - 1 LOOP
        IF w[i] ~ '[a-z]' AND w[i + 1] ~ '[a-z]' THEN
            pair := w[i] || ' ' || w[i + 1];
            IF NOT pair = ANY(pairs) THEN
                pairs := pairs || pair;
            END IF;
        END IF;
    END LOOP;
    RETURN pairs;
END $$;

CREATE TABLE product_search_pairs (
    pair text COLLATE "C" NOT NULL,
    k text COLLATE "C" NOT NULL,
    product_id uuid NOT NULL
);
INSERT INTO product_search_pairs (pair, k, product_id)
SELECT pr, lower(p.sku), p.id FROM products p, unnest(search_pairs_of(p.search_text)) AS pr;
-- A SKU is unique lower-cased (products_sku_key), so (pair, k) is too.
ALTER TABLE product_search_pairs ADD PRIMARY KEY (pair, k) INCLUDE (product_id);

-- Statement-level, so a bulk insert or update keeps the pairs in one pass.
-- Every change of search_text (a name, a SKU, a barcode: those rewrite
-- search_text through products_search_text and product_barcodes_search_*)
-- is an UPDATE of products, so these three keep the table exact.
CREATE FUNCTION search_pairs_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO product_search_pairs (pair, k, product_id)
    SELECT pr, lower(n.sku), n.id FROM new_rows n, unnest(search_pairs_of(n.search_text)) AS pr;
    RETURN NULL;
END $$;
CREATE FUNCTION search_pairs_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM product_search_pairs s
     USING old_rows o JOIN new_rows n ON n.id = o.id, unnest(search_pairs_of(o.search_text)) AS pr
     WHERE (o.search_text, o.sku) IS DISTINCT FROM (n.search_text, n.sku)
       AND s.pair = pr AND s.k = lower(o.sku);
    INSERT INTO product_search_pairs (pair, k, product_id)
    SELECT pr, lower(n.sku), n.id
      FROM old_rows o JOIN new_rows n ON n.id = o.id, unnest(search_pairs_of(n.search_text)) AS pr
     WHERE (o.search_text, o.sku) IS DISTINCT FROM (n.search_text, n.sku);
    RETURN NULL;
END $$;
CREATE FUNCTION search_pairs_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM product_search_pairs s
     USING old_rows o, unnest(search_pairs_of(o.search_text)) AS pr
     WHERE s.pair = pr AND s.k = lower(o.sku);
    RETURN NULL;
END $$;
CREATE TRIGGER products_search_pairs_insert AFTER INSERT ON products
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION search_pairs_insert();
CREATE TRIGGER products_search_pairs_update AFTER UPDATE ON products
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION search_pairs_update();
CREATE TRIGGER products_search_pairs_delete AFTER DELETE ON products
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION search_pairs_delete();

ANALYZE product_search_pairs;
