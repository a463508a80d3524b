ALTER TABLE stock_positions RESET (fillfactor);
DROP INDEX stock_positions_location_idx;
CREATE INDEX stock_positions_location_idx ON stock_positions (location_id) WHERE quantity > 0;
