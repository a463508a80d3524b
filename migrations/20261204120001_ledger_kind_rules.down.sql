ALTER TABLE stock_transactions
    DROP CONSTRAINT stock_transactions_kind_rules,
    ADD CONSTRAINT stock_transactions_kind_check CHECK (kind IN (
        'receipt', 'issue', 'adjustment', 'transfer_out', 'transfer_in', 'count_adjustment')),
    ADD CONSTRAINT stock_transactions_reason_check
        CHECK (reason IN ('damaged', 'lost', 'found', 'correction', 'expired', 'other')),
    ADD CONSTRAINT stock_transactions_transfer_has_id
        CHECK ((kind IN ('transfer_out', 'transfer_in')) = (transfer_id IS NOT NULL)),
    ADD CONSTRAINT stock_transactions_sign CHECK (
        (kind IN ('receipt', 'transfer_in') AND quantity > 0) OR
        (kind IN ('issue', 'transfer_out') AND quantity < 0) OR
        kind IN ('adjustment', 'count_adjustment'));
DROP FUNCTION stock_transaction_kind_ok(text, bigint, text, uuid);
