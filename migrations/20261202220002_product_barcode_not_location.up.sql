-- One barcode, one thing, in both directions: a product's barcode (as entered
-- or as its GTIN key) must not be a location's label; 20261202180001 refused
-- only the other way round. Like that check, this one reads without a lock:
-- a label and a barcode with the same text created in the same instant by two
-- transactions can both pass. A lock per code was tried and dropped: bulk
-- inserts (seeding, a 100,000-line CSV import in one transaction) ran out of
-- lock table memory.
CREATE FUNCTION product_barcodes_not_location() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM locations WHERE barcode IN (NEW.barcode, NEW.lookup_key)) THEN
        RAISE EXCEPTION 'barcode % labels a location', NEW.barcode
            USING ERRCODE = 'unique_violation', CONSTRAINT = 'locations_barcode_key';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER product_barcodes_not_location BEFORE INSERT OR UPDATE OF barcode, lookup_key
    ON product_barcodes FOR EACH ROW EXECUTE FUNCTION product_barcodes_not_location();
