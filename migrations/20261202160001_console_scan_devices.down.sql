-- Console devices stay as ordinary (keyless) devices: their scan events and
-- ledger rows reference them.
ALTER TABLE devices DROP COLUMN console_user_id;
