-- Webhooks: endpoints that receive signed copies of outbox events.
CREATE TABLE webhooks (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    url              text NOT NULL CHECK (length(url) BETWEEN 1 AND 2000),
    -- Topic filters; `*` matches any run of characters (`stock.*`, `*`).
    events           text[] NOT NULL CHECK (cardinality(events) BETWEEN 1 AND 50),
    description      text NOT NULL DEFAULT '' CHECK (length(description) <= 500),
    -- `whsec_` + base64 of 32 random bytes; needed in clear to sign, shown once.
    secret           text NOT NULL,
    active           boolean NOT NULL DEFAULT true,
    -- Why the service disabled it (NULL when an admin did, or when active).
    disabled_reason  text,
    -- Start of the current run of failed attempts; NULL after a success.
    failing_since    timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);
CREATE TRIGGER webhooks_touch BEFORE UPDATE ON webhooks FOR EACH ROW EXECUTE FUNCTION touch_updated_at();

-- One event for one webhook. A row is claimed by one replica at a time with
-- SELECT ... FOR UPDATE SKIP LOCKED and stays locked during the HTTP request.
CREATE TABLE webhook_deliveries (
    id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    webhook_id        uuid NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    -- The outbox position (commit order); NULL for a test ping.
    position          bigint,
    topic             text NOT NULL,
    aggregate_id      uuid,
    payload           jsonb NOT NULL,
    status            text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts          integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at   timestamptz NOT NULL DEFAULT now(),
    -- Retries stop (status failed) once the next one would be after this.
    give_up_at        timestamptz NOT NULL,
    last_attempt_at   timestamptz,
    last_status_code  integer,
    last_error        text,
    delivered_at      timestamptz,
    event_created_at  timestamptz NOT NULL,
    created_at        timestamptz NOT NULL DEFAULT now(),
    UNIQUE (webhook_id, position)
);
-- The worker's queue: due pending deliveries.
CREATE INDEX webhook_deliveries_due_idx ON webhook_deliveries (next_attempt_at) WHERE status = 'pending';
-- Per-aggregate order: "is an earlier delivery of this aggregate still pending?"
CREATE INDEX webhook_deliveries_order_idx ON webhook_deliveries (webhook_id, aggregate_id, position)
    WHERE status = 'pending';
-- Deliveries of one webhook, newest first (keyset pagination on (created_at, id)).
CREATE INDEX webhook_deliveries_list_idx ON webhook_deliveries (webhook_id, created_at DESC, id DESC);
