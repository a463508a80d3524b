ALTER TABLE stock_transactions DROP COLUMN reservation_id, DROP COLUMN value_after;
DROP TABLE reservations;
DROP TRIGGER stock_levels_v1_value ON stock_levels;
DROP FUNCTION stock_levels_v1_value();
ALTER TABLE stock_levels
    DROP CONSTRAINT stock_levels_value_non_negative,
    DROP CONSTRAINT stock_levels_reserved_range,
    DROP COLUMN value,
    DROP COLUMN unit_cost,
    DROP COLUMN reserved;
