-- The separate CHECKs again, as 20261204120001 and the migrations before it
-- left them.
CREATE FUNCTION stock_transaction_kind_ok(kind text, quantity bigint, reason text, transfer_id uuid)
RETURNS boolean LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
BEGIN
    RETURN COALESCE(
        CASE kind
            -- Receipts and transfers in add stock, issues and transfers out
            -- remove it; adjustments go either way (never by zero: the
            -- column's own CHECK). Both rows of a transfer, and only they,
            -- carry its transfer_id.
            WHEN 'receipt' THEN quantity > 0 AND transfer_id IS NULL
            WHEN 'issue' THEN quantity < 0 AND transfer_id IS NULL
            WHEN 'adjustment' THEN transfer_id IS NULL
            WHEN 'count_adjustment' THEN transfer_id IS NULL
            WHEN 'transfer_in' THEN quantity > 0 AND transfer_id IS NOT NULL
            WHEN 'transfer_out' THEN quantity < 0 AND transfer_id IS NOT NULL
            ELSE false
        END
        AND (reason IS NULL OR reason IN ('damaged', 'lost', 'found', 'correction', 'expired', 'other')),
        false);
END $$;

ALTER TABLE stock_transactions
    DROP CONSTRAINT stock_transactions_rules,
    ADD CONSTRAINT stock_transactions_balance_after_check CHECK (balance_after >= 0),
    ADD CONSTRAINT stock_transactions_kind_rules
        CHECK (stock_transaction_kind_ok(kind, quantity, reason, transfer_id)),
    ADD CONSTRAINT stock_transactions_lot_check CHECK (length(lot) <= 20),
    ADD CONSTRAINT stock_transactions_note_check CHECK (length(note) <= 2000),
    ADD CONSTRAINT stock_transactions_one_actor CHECK (num_nonnulls(actor_user_id, actor_device_id) = 1),
    ADD CONSTRAINT stock_transactions_quantity_check CHECK (quantity <> 0),
    ADD CONSTRAINT stock_transactions_reference_check CHECK (length(reference) <= 200),
    ADD CONSTRAINT stock_transactions_serial_check CHECK (length(serial) <= 20),
    ADD CONSTRAINT stock_transactions_unit_cost_check CHECK (unit_cost >= 0),
    ADD CONSTRAINT stock_transactions_warehouse_balance_non_negative CHECK (warehouse_balance_after >= 0);

ALTER TABLE stock_levels
    DROP CONSTRAINT stock_levels_rules,
    ADD CONSTRAINT stock_levels_quantity_non_negative CHECK (quantity >= 0),
    ADD CONSTRAINT stock_levels_reserved_range CHECK (reserved >= 0 AND reserved <= quantity),
    ADD CONSTRAINT stock_levels_sum_covers_elsewhere CHECK (elsewhere >= 0 AND elsewhere <= quantity),
    ADD CONSTRAINT stock_levels_value_non_negative CHECK (value >= 0 AND unit_cost >= 0);

DROP FUNCTION stock_level_rules(bigint, bigint, bigint, numeric, numeric);
DROP FUNCTION stock_transaction_rules(text, bigint, bigint, bigint, numeric, text, uuid, text, text, text, text, uuid, uuid);
DROP FUNCTION raise_check_violation(text, text);
