-- The CSV import writes a file's new barcodes BEFORE its new products (one
-- transaction), so that each new product's search_text is computed once, with
-- its barcodes, by the products' own BEFORE INSERT trigger. Inserted the other
-- way round, the barcodes' statement trigger rewrote every new product right
-- after its insert: a second heap tuple and a second set of entries in the
-- three trigram indexes per product, the largest cost of a 100,000-product
-- import (bench/README.md, "CSV import and export"). For that the import
-- checks this foreign key at the end of its writes (SET CONSTRAINTS ...
-- DEFERRED, then IMMEDIATE); for everything else it stays checked per
-- statement, as before (INITIALLY IMMEDIATE).
ALTER TABLE product_barcodes
    ALTER CONSTRAINT product_barcodes_product_id_fkey DEFERRABLE INITIALLY IMMEDIATE;
