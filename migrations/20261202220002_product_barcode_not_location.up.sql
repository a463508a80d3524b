-- One barcode, one thing, in both directions: a product's barcode must not be
-- a location's label (20261202180001 refused only the other way round). Both
-- checks take a transaction lock on the code first, so a location label and a
-- product barcode with the same text created at the same moment cannot both
-- pass: the second waits for the first and then sees it. A product barcode
-- has two texts (as entered and its GTIN key); their locks are taken in
-- sorted order, so two such checks cannot deadlock.
CREATE FUNCTION barcode_claim_lock(code text) RETURNS void LANGUAGE sql AS $$
    SELECT pg_advisory_xact_lock(25509, hashtext(code))
$$;

CREATE OR REPLACE FUNCTION locations_barcode_not_product() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.barcode IS NOT NULL THEN
        PERFORM barcode_claim_lock(NEW.barcode);
        IF EXISTS (
            SELECT 1 FROM product_barcodes WHERE lookup_key = NEW.barcode OR barcode = NEW.barcode
        ) THEN
            RAISE EXCEPTION 'barcode % belongs to a product', NEW.barcode
                USING ERRCODE = 'unique_violation', CONSTRAINT = 'locations_barcode_key';
        END IF;
    END IF;
    RETURN NEW;
END $$;

CREATE FUNCTION product_barcodes_not_location() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM barcode_claim_lock(c) FROM (
        SELECT DISTINCT c FROM unnest(ARRAY[NEW.barcode, NEW.lookup_key]) AS c
    ) s ORDER BY hashtext(c), c;
    IF EXISTS (SELECT 1 FROM locations WHERE barcode IN (NEW.barcode, NEW.lookup_key)) THEN
        RAISE EXCEPTION 'barcode % labels a location', NEW.barcode
            USING ERRCODE = 'unique_violation', CONSTRAINT = 'locations_barcode_key';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER product_barcodes_not_location BEFORE INSERT OR UPDATE OF barcode, lookup_key
    ON product_barcodes FOR EACH ROW EXECUTE FUNCTION product_barcodes_not_location();
