DROP TRIGGER product_barcodes_not_location ON product_barcodes;
DROP FUNCTION product_barcodes_not_location();
CREATE OR REPLACE FUNCTION locations_barcode_not_product() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.barcode IS NOT NULL AND EXISTS (
        SELECT 1 FROM product_barcodes WHERE lookup_key = NEW.barcode OR barcode = NEW.barcode
    ) THEN
        RAISE EXCEPTION 'barcode % belongs to a product', NEW.barcode
            USING ERRCODE = 'unique_violation', CONSTRAINT = 'locations_barcode_key';
    END IF;
    RETURN NEW;
END $$;
DROP FUNCTION barcode_claim_lock(text);
