-- A visit event (A02, A07, A08, A12, A13) that arrives before the discharge (A03) that
-- starts its visit's transition is kept here, by encounter key, for site.yaml
-- pending_visit_events_hours, and applied in event-time order when the transition starts:
-- delivered when it is not older than the discharge, else recorded as not applied. Nothing of
-- the message is copied: its raw bytes stay in adt_inbox and are read again when applied.
-- The inbox row says what became of it (status 'pending' while it waits).
ALTER TABLE adt_inbox DROP CONSTRAINT adt_inbox_status_check;
ALTER TABLE adt_inbox ADD CONSTRAINT adt_inbox_status_check
    CHECK (status IN ('received', 'processed', 'duplicate', 'ignored', 'rejected', 'no_protocol',
                      'too_old', 'pending'));
CREATE TABLE pending_visit_events (
    inbox_id      bigint PRIMARY KEY REFERENCES adt_inbox (id),
    encounter_key text NOT NULL,
    event_type    text NOT NULL,
    occurred_at   timestamptz NOT NULL,   -- EVN-6, EVN-2, else MSH-7 (else its arrival)
    received_at   timestamptz NOT NULL,
    settled_at    timestamptz,            -- when a discharge applied or dismissed it
    outcome       text CHECK (outcome IN ('delivered', 'older', 'expired', 'closed',
                                          'unreadable')),
    transition_id text,
    CHECK ((settled_at IS NULL) = (outcome IS NULL))
);
CREATE INDEX pending_visit_events_waiting ON pending_visit_events (encounter_key, occurred_at)
    WHERE settled_at IS NULL;
