ALTER TABLE stock_transactions ALTER COLUMN created_at SET DEFAULT now();
-- Mark what the relay has passed as published, so v1 does not publish it again.
UPDATE outbox SET published_at = COALESCE(published_at, now())
 WHERE position <= (SELECT position FROM outbox_consumers WHERE name = 'redis');
DROP TABLE outbox_consumers;
CREATE INDEX outbox_unpublished_idx ON outbox (id) WHERE published_at IS NULL;
DROP INDEX outbox_unsequenced_idx;
DROP INDEX outbox_position_key;
ALTER TABLE outbox DROP COLUMN position;
