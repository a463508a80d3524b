-- The product's category in the word pairs' index (20261203180001), so a
-- search by words within a category keeps only that category's products
-- from the index itself: before, "copper hinge" in one of 20 categories read
-- 769 catalog rows to find a page of 51 (4.8 ms at 1,000,000 products).
-- A change of category rewrites the product's pairs (search_pairs_update).
ALTER TABLE product_search_pairs DROP CONSTRAINT product_search_pairs_pkey;
TRUNCATE product_search_pairs;
ALTER TABLE product_search_pairs ADD COLUMN category_id uuid;
INSERT INTO product_search_pairs (pair, k, product_id, category_id)
SELECT pr, lower(p.sku), p.id, p.category_id
FROM products p, unnest(search_pairs_of(p.search_text)) AS pr;
ALTER TABLE product_search_pairs ADD PRIMARY KEY (pair, k) INCLUDE (product_id, category_id);

CREATE OR REPLACE FUNCTION search_pairs_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO product_search_pairs (pair, k, product_id, category_id)
    SELECT pr, lower(n.sku), n.id, n.category_id
      FROM new_rows n, unnest(search_pairs_of(n.search_text)) AS pr;
    RETURN NULL;
END $$;
CREATE OR REPLACE FUNCTION search_pairs_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM product_search_pairs s
     USING old_rows o JOIN new_rows n ON n.id = o.id, unnest(search_pairs_of(o.search_text)) AS pr
     WHERE (o.search_text, o.sku, o.category_id) IS DISTINCT FROM (n.search_text, n.sku, n.category_id)
       AND s.pair = pr AND s.k = lower(o.sku);
    INSERT INTO product_search_pairs (pair, k, product_id, category_id)
    SELECT pr, lower(n.sku), n.id, n.category_id
      FROM old_rows o JOIN new_rows n ON n.id = o.id, unnest(search_pairs_of(n.search_text)) AS pr
     WHERE (o.search_text, o.sku, o.category_id) IS DISTINCT FROM (n.search_text, n.sku, n.category_id);
    RETURN NULL;
END $$;

ANALYZE product_search_pairs;
