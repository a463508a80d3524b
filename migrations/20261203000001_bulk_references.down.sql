-- Back to row-by-row foreign keys (validated against the rows as they are).
DROP TRIGGER count_sessions_id_fixed ON count_sessions;
DROP TRIGGER products_id_fixed ON products;
DROP TRIGGER locations_id_fixed ON locations;
DROP TRIGGER lots_id_fixed ON lots;
DROP TRIGGER users_id_fixed ON users;
DROP TRIGGER devices_id_fixed ON devices;
DROP TRIGGER count_sessions_referenced_delete ON count_sessions;
DROP TRIGGER products_referenced_delete ON products;
DROP TRIGGER locations_referenced_delete ON locations;
DROP TRIGGER lots_referenced_delete ON lots;
DROP TRIGGER users_referenced_delete ON users;
DROP TRIGGER devices_referenced_delete ON devices;
DROP TRIGGER count_lines_references_insert ON count_lines;
DROP TRIGGER count_lines_references_update ON count_lines;
DROP TRIGGER count_lines_position_fixed ON count_lines;
DROP FUNCTION refuse_id_change();
DROP FUNCTION count_lines_position_fixed();
DROP FUNCTION check_referenced_delete();
DROP FUNCTION check_references();

ALTER TABLE count_lines
    ADD CONSTRAINT count_lines_count_id_fkey FOREIGN KEY (count_id) REFERENCES count_sessions (id) ON DELETE CASCADE,
    ADD CONSTRAINT count_lines_product_id_fkey FOREIGN KEY (product_id) REFERENCES products (id),
    ADD CONSTRAINT count_lines_location_id_fkey FOREIGN KEY (location_id) REFERENCES locations (id),
    ADD CONSTRAINT count_lines_lot_id_fkey FOREIGN KEY (lot_id) REFERENCES lots (id),
    ADD CONSTRAINT count_lines_counted_by_user_fkey FOREIGN KEY (counted_by_user) REFERENCES users (id),
    ADD CONSTRAINT count_lines_counted_by_device_fkey FOREIGN KEY (counted_by_device) REFERENCES devices (id);
