-- Back to v1: per-(product, warehouse) levels only. Levels already hold the
-- sum of their positions, so no quantity is lost; count lines of other
-- locations than DEFAULT and lots/serials are dropped with their tables.
DELETE FROM count_lines c USING locations l
WHERE l.id = c.location_id AND (l.code <> 'DEFAULT' OR c.lot_id IS NOT NULL);
-- Several positions of one product may have been counted: keep one line per
-- (count, product), as the v1 key demands.
DELETE FROM count_lines a USING count_lines b
WHERE a.count_id = b.count_id AND a.product_id = b.product_id AND a.ctid > b.ctid;
ALTER TABLE count_lines
    DROP CONSTRAINT count_lines_position_key,
    DROP COLUMN lot_id,
    DROP COLUMN location_id,
    ADD PRIMARY KEY (count_id, product_id);
ALTER TABLE count_sessions DROP COLUMN location_ids;
ALTER TABLE scan_events DROP COLUMN location_id;

DROP TRIGGER stock_transactions_v1_position ON stock_transactions;
DROP FUNCTION stock_transactions_v1_position();
DROP INDEX stock_transactions_serial_idx;
DROP INDEX stock_transactions_lot_idx;
ALTER TABLE stock_transactions
    DROP CONSTRAINT stock_transactions_lot_fkey,
    DROP CONSTRAINT stock_transactions_location_fkey,
    DROP COLUMN warehouse_balance_after,
    DROP COLUMN lot_id,
    DROP COLUMN location_id;

DROP TABLE serial_numbers;
DROP TRIGGER stock_levels_v1_position ON stock_levels;
DROP FUNCTION stock_levels_v1_position();
DROP TABLE stock_positions;
ALTER TABLE stock_levels DROP COLUMN version;
DROP TABLE lots;
ALTER TABLE products DROP COLUMN tracking;

DROP TRIGGER warehouses_default_location ON warehouses;
DROP FUNCTION warehouses_create_default_location();
DROP TABLE locations;
DROP FUNCTION locations_barcode_not_product();
DROP FUNCTION locations_cascade_path();
DROP FUNCTION locations_set_path();
