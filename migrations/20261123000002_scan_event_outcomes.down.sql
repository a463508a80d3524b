DROP INDEX IF EXISTS scan_events_received_idx;
DROP INDEX IF EXISTS scan_events_rejected_idx;
CREATE INDEX scan_events_status_idx ON scan_events (status, received_at DESC);
ALTER TABLE scan_events
    ADD COLUMN response jsonb NOT NULL DEFAULT '{}'::jsonb,
    DROP COLUMN level,
    DROP COLUMN units;
