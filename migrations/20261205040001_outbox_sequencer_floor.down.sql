-- Back to the identity column (continuing from the last id issued) and a
-- sequencer that scans from the lowest id.
ALTER TABLE outbox_consumers
    DROP CONSTRAINT outbox_consumers_floor_candidate,
    DROP COLUMN floor_candidate_xid,
    DROP COLUMN floor_candidate,
    DROP COLUMN floor;

DO $$
DECLARE
    issued bigint := pg_sequence_last_value('outbox_id_seq');
BEGIN
    ALTER TABLE outbox ALTER COLUMN id DROP DEFAULT;
    DROP SEQUENCE outbox_id_seq;
    ALTER TABLE outbox ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY;
    IF issued IS NOT NULL THEN
        PERFORM setval('outbox_id_seq', issued);
    END IF;
END $$;
DROP FUNCTION outbox_next_id();
