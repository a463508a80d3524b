-- Consumers of the outbox read it in commit order (see src/events.rs, "Reading
-- order"): identity ids are taken before commit, so `id > last_seen` skipped
-- rows of transactions that committed late. A position is now assigned after
-- commit by one sequencer at a time; consumers page on it.
ALTER TABLE outbox ADD COLUMN position bigint;
-- Every row present now has committed: number them by id, so a v1
-- Last-Event-ID (an outbox id) still means the same point in the feed.
UPDATE outbox SET position = id;
CREATE UNIQUE INDEX outbox_position_key ON outbox (position);
-- The sequencer's work queue.
CREATE INDEX outbox_unsequenced_idx ON outbox (id) WHERE position IS NULL;
-- published_at is no longer written: the relay keeps a cursor below.
DROP INDEX outbox_unpublished_idx;

-- One row per reader of the outbox that must not miss or repeat an event:
-- `sequencer` holds the last position handed out; `redis` and `webhooks` the
-- last position they have consumed. The row lock is also the mutual exclusion
-- of that reader across replicas (SELECT ... FOR UPDATE SKIP LOCKED).
CREATE TABLE outbox_consumers (
    name      text PRIMARY KEY,
    position  bigint NOT NULL CHECK (position >= 0)
);
INSERT INTO outbox_consumers (name, position) VALUES
    ('sequencer', COALESCE((SELECT max(id) FROM outbox), 0)),
    -- Resume the relay just before the first event v1 had not published yet.
    ('redis', COALESCE((SELECT min(id) - 1 FROM outbox WHERE published_at IS NULL),
                       (SELECT max(id) FROM outbox), 0)),
    -- Webhooks start with the events committed from now on.
    ('webhooks', COALESCE((SELECT max(id) FROM outbox), 0));

-- The ledger of one (product, warehouse) is listed in the order its rows were
-- written. now() is the transaction's START time: a transaction that began
-- earlier but waited for the level's row lock got an earlier created_at than
-- the row it came after, so balance_after jumped back and forth in the
-- listing. clock_timestamp() is read when the row is inserted, which is
-- after the level's row lock is taken, so one level's rows sort by created_at
-- in lock (= commit) order. Existing rows keep their times.
ALTER TABLE stock_transactions ALTER COLUMN created_at SET DEFAULT clock_timestamp();
