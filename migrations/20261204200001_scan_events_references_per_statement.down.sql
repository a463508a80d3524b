-- Back to row-by-row foreign keys on scan_events (validated against the rows as they are).
DROP TRIGGER devices_referenced_delete ON devices;
CREATE TRIGGER devices_referenced_delete AFTER DELETE ON devices
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT
    EXECUTE FUNCTION check_referenced_delete(
        'count_lines_counted_by_device_fkey', 'count_lines', 'counted_by_device', 'restrict');
DROP TRIGGER locations_referenced_delete ON locations;
CREATE TRIGGER locations_referenced_delete AFTER DELETE ON locations
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT
    EXECUTE FUNCTION check_referenced_delete('count_lines_location_id_fkey', 'count_lines', 'location_id', 'restrict');
DROP TRIGGER products_referenced_delete ON products;
CREATE TRIGGER products_referenced_delete AFTER DELETE ON products
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT
    EXECUTE FUNCTION check_referenced_delete('count_lines_product_id_fkey', 'count_lines', 'product_id', 'restrict');

DROP TRIGGER scan_events_references_update ON scan_events;
DROP TRIGGER scan_events_references_insert ON scan_events;
DROP FUNCTION scan_events_check_references();
-- count_lines' check as 20261203000001 wrote it.
CREATE OR REPLACE FUNCTION check_references() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    i int := 0;
    wanted bigint;
    held bigint;
    missing text;
BEGIN
    PERFORM 1 FROM new_rows LIMIT 1;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    WHILE i < TG_NARGS LOOP
        EXECUTE format(
            'WITH keys AS (SELECT DISTINCT %1$I AS k FROM new_rows WHERE %1$I IS NOT NULL),
                  held AS (SELECT r.id FROM %2$I r WHERE r.id IN (SELECT k FROM keys) FOR KEY SHARE OF r)
             SELECT (SELECT count(*) FROM keys), (SELECT count(*) FROM held)',
            TG_ARGV[i + 1], TG_ARGV[i + 2])
        INTO wanted, held;
        IF held < wanted THEN
            EXECUTE format(
                'SELECT n.k::text FROM (SELECT DISTINCT %1$I AS k FROM new_rows WHERE %1$I IS NOT NULL) n
                 WHERE NOT EXISTS (SELECT 1 FROM %2$I r WHERE r.id = n.k) LIMIT 1',
                TG_ARGV[i + 1], TG_ARGV[i + 2])
            INTO missing;
            RAISE foreign_key_violation USING
                MESSAGE = format('insert or update on table "%s" violates foreign key constraint "%s"',
                                 TG_TABLE_NAME, TG_ARGV[i]),
                DETAIL = format('Key (%s)=(%s) is not present in table "%s".',
                                TG_ARGV[i + 1], coalesce(missing, 'deleted meanwhile'), TG_ARGV[i + 2]),
                CONSTRAINT = TG_ARGV[i], TABLE = TG_TABLE_NAME, SCHEMA = TG_TABLE_SCHEMA;
        END IF;
        i := i + 3;
    END LOOP;
    RETURN NULL;
END $$;
DROP FUNCTION raise_missing_reference(text, text, text, text, text, text);

ALTER TABLE scan_events
    ADD CONSTRAINT scan_events_device_id_fkey FOREIGN KEY (device_id) REFERENCES devices (id),
    ADD CONSTRAINT scan_events_product_id_fkey FOREIGN KEY (product_id) REFERENCES products (id),
    ADD CONSTRAINT scan_events_location_id_fkey FOREIGN KEY (location_id) REFERENCES locations (id),
    ADD CONSTRAINT scan_events_transaction_id_fkey FOREIGN KEY (transaction_id) REFERENCES stock_transactions (id);
