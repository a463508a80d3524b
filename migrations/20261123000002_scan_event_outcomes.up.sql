-- Scan outcomes become columns written once, in the same INSERT that claims
-- the event id, instead of a placeholder row updated with a JSON copy of the
-- answer: half the writes per event, and no JSON to parse on a resend (the
-- answer is rebuilt from these columns).
ALTER TABLE scan_events
    ADD COLUMN units bigint,
    ADD COLUMN level bigint,
    DROP COLUMN response;

-- Only rejected events are reviewed by status; applied ones (the vast
-- majority) no longer pay for an index entry there.
DROP INDEX scan_events_status_idx;
CREATE INDEX scan_events_rejected_idx ON scan_events (received_at DESC, id DESC) WHERE status = 'rejected';
CREATE INDEX scan_events_received_idx ON scan_events (received_at DESC, id DESC);
