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
DROP FUNCTION raise_missing_reference(text, text, text, text, text);

ALTER TABLE scan_events
    ADD CONSTRAINT scan_events_device_id_fkey FOREIGN KEY (device_id) REFERENCES devices (id),
    ADD CONSTRAINT scan_events_product_id_fkey FOREIGN KEY (product_id) REFERENCES products (id),
    ADD CONSTRAINT scan_events_location_id_fkey FOREIGN KEY (location_id) REFERENCES locations (id),
    ADD CONSTRAINT scan_events_transaction_id_fkey FOREIGN KEY (transaction_id) REFERENCES stock_transactions (id);
