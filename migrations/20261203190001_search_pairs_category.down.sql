CREATE OR REPLACE FUNCTION search_pairs_update() RETURNS trigger LANGUAGE plpgsql AS $$
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
CREATE OR REPLACE FUNCTION search_pairs_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO product_search_pairs (pair, k, product_id)
    SELECT pr, lower(n.sku), n.id FROM new_rows n, unnest(search_pairs_of(n.search_text)) AS pr;
    RETURN NULL;
END $$;
ALTER TABLE product_search_pairs DROP CONSTRAINT product_search_pairs_pkey;
ALTER TABLE product_search_pairs DROP COLUMN category_id;
ALTER TABLE product_search_pairs ADD PRIMARY KEY (pair, k) INCLUDE (product_id);
