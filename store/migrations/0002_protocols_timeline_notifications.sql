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

-- Encounter history by opaque patient key: admissions, ED visits and discharges, for
-- readmission routing and LACE's ED-visit count.
CREATE TABLE encounters (
    patient_key   text NOT NULL,
    encounter_key text NOT NULL,
    kind          text NOT NULL CHECK (kind IN ('admission', 'ed_visit', 'discharge')),
    facility      text NOT NULL,
    at            timestamptz NOT NULL,
    transition_id text,
    PRIMARY KEY (patient_key, encounter_key, kind)
);
CREATE INDEX encounters_by_time ON encounters (patient_key, kind, at);

-- Message browser: what each message caused, and reprocessing of dead letters.
ALTER TABLE adt_inbox
    ADD COLUMN decision text,
    ADD COLUMN reprocessed_from bigint REFERENCES adt_inbox (id);
ALTER TABLE adt_inbox DROP CONSTRAINT adt_inbox_control_id_unique;
-- A reprocessed copy shares its original's control id; only originals are deduplicated.
CREATE UNIQUE INDEX adt_inbox_control_id_unique ON adt_inbox (sending_facility, control_id)
    WHERE reprocessed_from IS NULL;
CREATE INDEX adt_inbox_type_time ON adt_inbox (message_type, received_at DESC);

-- The dead letters: every message that was refused, with the reason, kept forever.
CREATE VIEW adt_dead_letters AS
    SELECT id, sending_facility, control_id, message_type, received_at, error, ack_code, raw
    FROM adt_inbox WHERE status = 'rejected';
