ALTER TABLE product_barcodes
    ALTER CONSTRAINT product_barcodes_product_id_fkey NOT DEFERRABLE;
