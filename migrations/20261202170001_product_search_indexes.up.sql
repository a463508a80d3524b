-- Product search (`q`) per query shape, instead of one trigram predicate whose
-- plan the planner had to guess (see bench/README.md, "Search"). A product
-- matches when its search_text (migration 3: lower(sku, name, barcodes))
-- contains the term, as before; the candidates now come from three indexes,
-- each exact for its part:
--   * the SKU starts with the term: a byte-order B-tree on lower(sku), which is
--     also the list order, so a prefix range is read in order and stops at the
--     page size (exact SKU and SKU prefix);
--   * the term is inside the SKU after its first character: a trigram index on
--     substr(lower(sku), 2). Separate from the rest because catalogs share SKU
--     prefixes ("SEED-00..."): in one index with names and barcodes those
--     trigrams match every product, and a code-like term rechecked ~100k rows;
--   * the term is in the name or a barcode: a trigram index on the rest of
--     search_text, substr(search_text, length(sku) + 2) (SKUs are ASCII, so
--     lower() keeps their length).
-- A term with a space may span the SKU and the name and still uses
-- products_search_trgm_idx.
CREATE INDEX products_sku_order_idx ON products ((lower(sku) COLLATE "C"));
CREATE INDEX products_category_sku_order_idx ON products (category_id, (lower(sku) COLLATE "C"));
CREATE INDEX products_sku_infix_trgm_idx ON products USING gin (substr(lower(sku), 2) gin_trgm_ops);
CREATE INDEX products_search_rest_trgm_idx ON products
    USING gin (substr(search_text, length(sku) + 2) gin_trgm_ops);
