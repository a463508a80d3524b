DROP FUNCTION stock_move_default(uuid, text, uuid, uuid, bigint, numeric, text, text, text, uuid, uuid);
DROP FUNCTION stock_event_payload(stock_transactions);
