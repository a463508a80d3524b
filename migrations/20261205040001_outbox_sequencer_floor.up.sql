-- The sequencer (src/events.rs, "Reading order") finds committed rows
-- without a position through `outbox_unsequenced_idx`, in id order from the
-- lowest. Every row enters that partial index when inserted and its entry
-- dies when the sequencer gives it a position, but dead entries stay in the
-- index's leaf pages until VACUUM: every pass walked all of them from the
-- left. In the scanner benchmark a pass read ~4,700 pages (4.7 ms) and the
-- sequencer spent more of PostgreSQL's time than the batches' writes.
--
-- The sequencer now keeps a floor: an id below which no row will ever lack a
-- position, and scans from there. Proving a floor needs to know that no
-- transaction still in flight holds a smaller id, which PostgreSQL can tell
-- from transaction ids if a row's transaction id is assigned BEFORE its
-- outbox id: a sequencer pass reads the last id issued, THEN takes its own
-- transaction id, so every id issued by then belongs to a smaller
-- transaction id; once a later pass's snapshot has an xmin at or past the
-- earlier pass's transaction id, each of those transactions has ended
-- (src/events.rs, `Floor`). The column default below makes that order a
-- property of the table rather than of its callers (the identity column's
-- own default took the id first when the INSERT was a transaction's first
-- write).

-- The row's transaction id first (assigned now if it has none), then its id.
-- The sequence keeps CACHE 1: with a per-session cache an id could be handed
-- out after a larger one was read as the last issued.
CREATE FUNCTION outbox_next_id() RETURNS bigint LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    PERFORM pg_current_xact_id();
    RETURN nextval('outbox_id_seq');
END $$;

DO $$
DECLARE
    issued bigint := pg_sequence_last_value('outbox_id_seq');
BEGIN
    ALTER TABLE outbox ALTER COLUMN id DROP IDENTITY;
    CREATE SEQUENCE outbox_id_seq AS bigint CACHE 1 OWNED BY outbox.id;
    IF issued IS NOT NULL THEN
        PERFORM setval('outbox_id_seq', issued);
    END IF;
END $$;
ALTER TABLE outbox ALTER COLUMN id SET DEFAULT outbox_next_id();

-- The sequencer's floor and the candidate that becomes the next one: the
-- last id issued when a pass began, and that pass's own transaction id.
ALTER TABLE outbox_consumers
    ADD COLUMN floor bigint NOT NULL DEFAULT 0 CHECK (floor >= 0),
    ADD COLUMN floor_candidate bigint,
    ADD COLUMN floor_candidate_xid bigint,
    ADD CONSTRAINT outbox_consumers_floor_candidate CHECK ((floor_candidate IS NULL) = (floor_candidate_xid IS NULL));
