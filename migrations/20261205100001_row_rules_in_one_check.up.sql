-- The ledger's and the levels' row rules in one CHECK per table (issue 13:
-- "no more than 15 % below v1").
--
-- PostgreSQL 15 keeps CHECK constraints only as stored node text: every
-- statement that writes a table reads each of its CHECKs back
-- (stringToNode) and prepares it again (20261204120001 says more). A
-- movement's one ledger INSERT and one level UPDATE re-read ten and four of
-- them, 8,300 characters of node text, on every movement. A CHECK that calls
-- a PL/pgSQL function is stored as one call; the function is compiled and
-- its expression planned once per connection. pgbench on stock_move_default
-- (scripts/bench-variant.sh, CPU-bound: c=16 over 1,000 products,
-- synchronous_commit off), six alternated pairs: +1 % to +18 %, median
-- +9 %; with this migration's down as the variant instead, median -7 %
-- (bench/README.md, "Row rules in one CHECK per table").
--
-- Nothing changes for a writer: each rule is the CHECK it replaces, and a
-- row breaking it is refused with SQLSTATE 23514 under that CHECK's name
-- (the API maps stock_levels_quantity_non_negative to insufficient-stock),
-- in the order PostgreSQL evaluated them (by name), so a row breaking two
-- rules reports the same one as before. As in a CHECK, a rule that comes
-- out NULL holds. tests/ops.rs breaks each rule.

-- The error PostgreSQL raises when CHECK `con` of table `tbl` refuses a row.
-- One wording for both tables' rules.
CREATE FUNCTION raise_check_violation(tbl text, con text)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    RAISE check_violation USING
        MESSAGE = format('new row for relation "%s" violates check constraint "%s"', tbl, con),
        CONSTRAINT = con, TABLE = tbl, SCHEMA = current_schema();
END $$;

CREATE FUNCTION stock_transaction_rules(
    kind text, quantity bigint, balance_after bigint, warehouse_balance_after bigint,
    unit_cost numeric, reason text, transfer_id uuid, reference text, note text, lot text,
    serial text, actor_user_id uuid, actor_device_id uuid)
RETURNS boolean LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
    broken text;
BEGIN
    broken := CASE
        WHEN NOT (balance_after >= 0) THEN 'stock_transactions_balance_after_check'
        -- Receipts and transfers in add stock, issues and transfers out
        -- remove it; adjustments go either way (never by zero: the quantity
        -- rule). Both rows of a transfer, and only they, carry its
        -- transfer_id. (20261204120001's stock_transaction_kind_ok.)
        WHEN NOT COALESCE(
            CASE kind
                WHEN 'receipt' THEN quantity > 0 AND transfer_id IS NULL
                WHEN 'issue' THEN quantity < 0 AND transfer_id IS NULL
                WHEN 'adjustment' THEN transfer_id IS NULL
                WHEN 'count_adjustment' THEN transfer_id IS NULL
                WHEN 'transfer_in' THEN quantity > 0 AND transfer_id IS NOT NULL
                WHEN 'transfer_out' THEN quantity < 0 AND transfer_id IS NOT NULL
                ELSE false
            END
            AND (reason IS NULL
                 OR reason IN ('damaged', 'lost', 'found', 'correction', 'expired', 'other')),
            false) THEN 'stock_transactions_kind_rules'
        WHEN NOT (length(lot) <= 20) THEN 'stock_transactions_lot_check'
        WHEN NOT (length(note) <= 2000) THEN 'stock_transactions_note_check'
        WHEN NOT (num_nonnulls(actor_user_id, actor_device_id) = 1) THEN 'stock_transactions_one_actor'
        WHEN NOT (quantity <> 0) THEN 'stock_transactions_quantity_check'
        WHEN NOT (length(reference) <= 200) THEN 'stock_transactions_reference_check'
        WHEN NOT (length(serial) <= 20) THEN 'stock_transactions_serial_check'
        WHEN NOT (unit_cost >= 0) THEN 'stock_transactions_unit_cost_check'
        WHEN NOT (warehouse_balance_after >= 0) THEN 'stock_transactions_warehouse_balance_non_negative'
    END;
    IF broken IS NOT NULL THEN
        PERFORM raise_check_violation('stock_transactions', broken);
    END IF;
    RETURN true;
END $$;

CREATE FUNCTION stock_level_rules(quantity bigint, reserved bigint, elsewhere bigint, value numeric, unit_cost numeric)
RETURNS boolean LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
    broken text;
BEGIN
    broken := CASE
        WHEN NOT (quantity >= 0) THEN 'stock_levels_quantity_non_negative'
        WHEN NOT (reserved >= 0 AND reserved <= quantity) THEN 'stock_levels_reserved_range'
        -- Units held in the level's other positions (20261205070001).
        WHEN NOT (elsewhere >= 0 AND elsewhere <= quantity) THEN 'stock_levels_sum_covers_elsewhere'
        WHEN NOT (value >= 0 AND unit_cost >= 0) THEN 'stock_levels_value_non_negative'
    END;
    IF broken IS NOT NULL THEN
        PERFORM raise_check_violation('stock_levels', broken);
    END IF;
    RETURN true;
END $$;

ALTER TABLE stock_transactions
    DROP CONSTRAINT stock_transactions_balance_after_check,
    DROP CONSTRAINT stock_transactions_kind_rules,
    DROP CONSTRAINT stock_transactions_lot_check,
    DROP CONSTRAINT stock_transactions_note_check,
    DROP CONSTRAINT stock_transactions_one_actor,
    DROP CONSTRAINT stock_transactions_quantity_check,
    DROP CONSTRAINT stock_transactions_reference_check,
    DROP CONSTRAINT stock_transactions_serial_check,
    DROP CONSTRAINT stock_transactions_unit_cost_check,
    DROP CONSTRAINT stock_transactions_warehouse_balance_non_negative,
    ADD CONSTRAINT stock_transactions_rules CHECK (stock_transaction_rules(
        kind, quantity, balance_after, warehouse_balance_after, unit_cost, reason, transfer_id,
        reference, note, lot, serial, actor_user_id, actor_device_id)) NOT VALID;
DROP FUNCTION stock_transaction_kind_ok(text, bigint, text, uuid);

ALTER TABLE stock_levels
    DROP CONSTRAINT stock_levels_quantity_non_negative,
    DROP CONSTRAINT stock_levels_reserved_range,
    DROP CONSTRAINT stock_levels_sum_covers_elsewhere,
    DROP CONSTRAINT stock_levels_value_non_negative,
    ADD CONSTRAINT stock_levels_rules
        CHECK (stock_level_rules(quantity, reserved, elsewhere, value, unit_cost)) NOT VALID;

-- Existing rows met the rules they replace; checked all the same (without
-- blocking writers while the ledger is read).
ALTER TABLE stock_transactions VALIDATE CONSTRAINT stock_transactions_rules;
ALTER TABLE stock_levels VALIDATE CONSTRAINT stock_levels_rules;
