DROP TRIGGER product_barcodes_not_location ON product_barcodes;
DROP FUNCTION product_barcodes_not_location();
