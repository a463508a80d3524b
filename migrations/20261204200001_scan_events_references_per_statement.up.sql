-- The foreign keys of scan_events are checked once per statement instead of
-- once per row, as count_lines' are (migration 20261203000001).
--
-- Why: a scanner batch stores its 500 events in one INSERT, and a foreign
-- key checks every row with a query of its own that also locks the
-- referenced row (the same device 500 times). Four keys: ~9 ms of the ~65 ms
-- a batch takes (auto_explain over `scripts/bench.sh scanner`); batches ran
-- ~12 % faster without them (bench/README.md, "Scanner batches").
--
-- Unlike count_lines' generic check_references(), which builds its queries
-- per call (EXECUTE format: planned every time, 1.1-1.7 ms, too much for a
-- single scan), this function's SQL is static, so PL/pgSQL plans it once per
-- connection.
--
-- What it keeps of a foreign key: the same refusals under the same names
-- (SQLSTATE 23503, the old constraint names), and the lock: the referenced
-- devices, products and locations are locked FOR KEY SHARE, so a concurrent
-- delete of one waits for the inserting transaction and then sees its rows
-- (the delete side is check_referenced_delete, which now also looks at
-- scan_events). A ledger row needs no lock: the ledger refuses every UPDATE,
-- DELETE and TRUNCATE, so a transaction that exists stays.

-- Raises the error the foreign key `con` of table `schema.tbl` would raise for the
-- key `missing` of column `col` (NULL: the row was there, and was deleted
-- before it could be locked). One wording for every per-statement check:
-- count_lines' generic one below, and scan_events'.
CREATE FUNCTION raise_missing_reference(schema text, tbl text, con text, col text, ref text, missing text)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    RAISE foreign_key_violation USING
        MESSAGE = format('insert or update on table "%s" violates foreign key constraint "%s"', tbl, con),
        DETAIL = format('Key (%s)=(%s) is not present in table "%s".', col,
                        coalesce(missing, 'deleted meanwhile'), ref),
        CONSTRAINT = con, TABLE = tbl, SCHEMA = schema;
END $$;

-- count_lines' check (20261203000001), unchanged but for raising through
-- raise_missing_reference.
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
            PERFORM raise_missing_reference(TG_TABLE_SCHEMA, TG_TABLE_NAME, TG_ARGV[i], TG_ARGV[i + 1], TG_ARGV[i + 2], missing);
        END IF;
        i := i + 3;
    END LOOP;
    RETURN NULL;
END $$;

-- new_rows: the statement's inserted or updated rows.
CREATE FUNCTION scan_events_check_references() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF (SELECT count(DISTINCT device_id) FROM new_rows)
       > (SELECT count(*) FROM (SELECT 1 FROM devices r
                                WHERE r.id IN (SELECT device_id FROM new_rows) FOR KEY SHARE OF r) h) THEN
        PERFORM raise_missing_reference(TG_TABLE_SCHEMA, TG_TABLE_NAME, 'scan_events_device_id_fkey', 'device_id', 'devices',
            (SELECT n.device_id::text FROM new_rows n
             WHERE NOT EXISTS (SELECT 1 FROM devices r WHERE r.id = n.device_id) LIMIT 1));
    END IF;
    IF (SELECT count(DISTINCT product_id) FROM new_rows)
       > (SELECT count(*) FROM (SELECT 1 FROM products r
                                WHERE r.id IN (SELECT product_id FROM new_rows) FOR KEY SHARE OF r) h) THEN
        PERFORM raise_missing_reference(TG_TABLE_SCHEMA, TG_TABLE_NAME, 'scan_events_product_id_fkey', 'product_id', 'products',
            (SELECT n.product_id::text FROM new_rows n
             WHERE n.product_id IS NOT NULL
               AND NOT EXISTS (SELECT 1 FROM products r WHERE r.id = n.product_id) LIMIT 1));
    END IF;
    IF (SELECT count(DISTINCT location_id) FROM new_rows)
       > (SELECT count(*) FROM (SELECT 1 FROM locations r
                                WHERE r.id IN (SELECT location_id FROM new_rows) FOR KEY SHARE OF r) h) THEN
        PERFORM raise_missing_reference(TG_TABLE_SCHEMA, TG_TABLE_NAME, 'scan_events_location_id_fkey', 'location_id', 'locations',
            (SELECT n.location_id::text FROM new_rows n
             WHERE n.location_id IS NOT NULL
               AND NOT EXISTS (SELECT 1 FROM locations r WHERE r.id = n.location_id) LIMIT 1));
    END IF;
    PERFORM raise_missing_reference(TG_TABLE_SCHEMA, TG_TABLE_NAME, 'scan_events_transaction_id_fkey', 'transaction_id',
                                    'stock_transactions', n.transaction_id::text)
    FROM new_rows n
    WHERE n.transaction_id IS NOT NULL
      AND NOT EXISTS (SELECT 1 FROM stock_transactions t WHERE t.id = n.transaction_id)
    LIMIT 1;
    RETURN NULL;
END $$;

ALTER TABLE scan_events
    DROP CONSTRAINT scan_events_device_id_fkey,
    DROP CONSTRAINT scan_events_product_id_fkey,
    DROP CONSTRAINT scan_events_location_id_fkey,
    DROP CONSTRAINT scan_events_transaction_id_fkey;

CREATE TRIGGER scan_events_references_insert AFTER INSERT ON scan_events
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
    EXECUTE FUNCTION scan_events_check_references();
CREATE TRIGGER scan_events_references_update AFTER UPDATE ON scan_events
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
    EXECUTE FUNCTION scan_events_check_references();

-- The referenced side: deleting a device, product or location a scan event
-- names is refused, as the foreign keys refused it (ids never change: the
-- *_id_fixed triggers of 20261203000001).
DROP TRIGGER products_referenced_delete ON products;
CREATE TRIGGER products_referenced_delete AFTER DELETE ON products
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT
    EXECUTE FUNCTION check_referenced_delete(
        'count_lines_product_id_fkey', 'count_lines', 'product_id', 'restrict',
        'scan_events_product_id_fkey', 'scan_events', 'product_id', 'restrict');
DROP TRIGGER locations_referenced_delete ON locations;
CREATE TRIGGER locations_referenced_delete AFTER DELETE ON locations
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT
    EXECUTE FUNCTION check_referenced_delete(
        'count_lines_location_id_fkey', 'count_lines', 'location_id', 'restrict',
        'scan_events_location_id_fkey', 'scan_events', 'location_id', 'restrict');
DROP TRIGGER devices_referenced_delete ON devices;
CREATE TRIGGER devices_referenced_delete AFTER DELETE ON devices
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT
    EXECUTE FUNCTION check_referenced_delete(
        'count_lines_counted_by_device_fkey', 'count_lines', 'counted_by_device', 'restrict',
        'scan_events_device_id_fkey', 'scan_events', 'device_id', 'restrict');
