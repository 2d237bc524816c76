-- HEDIS TRC evidence (NCQA TRC FAQ 2024-02-15: an ADT received by itself meets neither
-- "notification of inpatient admission" nor "receipt of discharge information"): a person's
-- recorded "filed" action, or a document event (MDM^T02/T04 of the index stay) from the
-- inbox. One row per component, source and instant: recording the same evidence twice
-- changes nothing.
CREATE TABLE trc_evidence (
    transition_id text NOT NULL,
    component     text NOT NULL
                  CHECK (component IN ('admission_notification', 'discharge_information')),
    source        text NOT NULL CHECK (source IN ('filed', 'document')),
    at            timestamptz NOT NULL,
    actor         text,
    inbox_id      bigint,
    recorded_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (transition_id, component, source, at)
);
