-- The ledger's vocabulary and sign rules in one function (issue 13: movement
-- throughput).
--
-- PostgreSQL 15 does not keep a table's CHECK constraints parsed: every
-- statement that writes the table reads each one back from its stored node
-- text (stringToNode) and prepares it again, and a text array constant is
-- stored byte by byte, as decimal numbers. The four rules below spelt out
-- their kinds and reasons as such arrays; reading them back on every
-- movement's INSERT was 9 % of the database's time per movement (pgbench on
-- stock_move_default, 1,000 products, c=16: 4,950 -> 5,400 tps; every ledger
-- CHECK dropped: 5,700). A CHECK that calls a PL/pgSQL function is stored as
-- one call on four columns; the function is compiled once per connection and
-- its expressions are planned once per connection.
--
-- Same rules, same rows accepted: tests/ops.rs inserts a row breaking each.
-- The shorter checks (lengths, non-negative balances, one actor) stay as they
-- were: their stored form is small.
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
    DROP CONSTRAINT stock_transactions_kind_check,
    DROP CONSTRAINT stock_transactions_reason_check,
    DROP CONSTRAINT stock_transactions_sign,
    DROP CONSTRAINT stock_transactions_transfer_has_id,
    ADD CONSTRAINT stock_transactions_kind_rules
        CHECK (stock_transaction_kind_ok(kind, quantity, reason, transfer_id)) NOT VALID;
-- Existing rows met the four rules it replaces; checked all the same.
ALTER TABLE stock_transactions VALIDATE CONSTRAINT stock_transactions_kind_rules;
