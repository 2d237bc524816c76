-- Protocol work: risk on the projection, the timeline, escalation notifications, ED history.
ALTER TABLE adt_inbox DROP CONSTRAINT adt_inbox_status_check;
ALTER TABLE adt_inbox ADD CONSTRAINT adt_inbox_status_check
    CHECK (status IN ('received', 'processed', 'duplicate', 'ignored', 'rejected', 'no_protocol'));

ALTER TABLE transitions
    ADD COLUMN risk_tier text NOT NULL DEFAULT 'standard',
    ADD COLUMN lace integer NOT NULL DEFAULT 0,
    ADD COLUMN escalation_level integer NOT NULL DEFAULT 0,
    ADD COLUMN outcome jsonb;

-- One line per thing that happened to a transition (steps, escalations, ADT events, notes).
CREATE TABLE transition_events (
    transition_id text NOT NULL,
    seq           integer NOT NULL,
    at            timestamptz NOT NULL,
    kind          text NOT NULL,
    step_id       text,
    actor         text,
    detail        text NOT NULL DEFAULT '',
    PRIMARY KEY (transition_id, seq)
);

-- Escalations: one row per level reached; the delivery adapters read it (outbox).
CREATE TABLE notifications (
    id            bigserial PRIMARY KEY,
    transition_id text NOT NULL,
    step_id       text NOT NULL,
    level         integer NOT NULL,
    role          text NOT NULL,
    channel       text NOT NULL,
    due_at        timestamptz NOT NULL,
    scheduled_at  timestamptz NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    delivered_at  timestamptz,
    UNIQUE (transition_id, step_id, level, due_at)
);
CREATE INDEX notifications_undelivered ON notifications (created_at) WHERE delivered_at IS NULL;

-- Emergency-department visits by opaque patient key, for LACE 'E'.
CREATE TABLE ed_visits (
    patient_key   text NOT NULL,
    encounter_key text NOT NULL,
    facility      text NOT NULL,
    visited_at    timestamptz NOT NULL,
    PRIMARY KEY (patient_key, encounter_key)
);
