-- The ADT inbox: every message received, kept whatever became of it (invariant 1).
CREATE TABLE adt_inbox (
    id               bigserial PRIMARY KEY,
    sending_facility text,
    control_id       text,
    message_type     text,
    raw              bytea NOT NULL,
    received_at      timestamptz NOT NULL DEFAULT now(),
    status           text NOT NULL DEFAULT 'received'
                     CHECK (status IN ('received', 'processed', 'duplicate', 'ignored', 'rejected')),
    error            text,
    ack_code         text,
    ack              text,
    transition_id    text,
    processed_at     timestamptz,
    -- NULLs are distinct: unparseable messages (no MSH) are all kept.
    CONSTRAINT adt_inbox_control_id_unique UNIQUE (sending_facility, control_id)
);
CREATE INDEX adt_inbox_received_at ON adt_inbox (received_at DESC);
CREATE INDEX adt_inbox_status ON adt_inbox (status) WHERE status IN ('received', 'rejected');

-- The transition projection: one row per transition, written by its workflow.
CREATE TABLE transitions (
    transition_id    text PRIMARY KEY,
    encounter_key    text NOT NULL UNIQUE,
    facility         text NOT NULL,
    protocol_id      text NOT NULL,
    protocol_version integer NOT NULL,
    status           text NOT NULL,
    discharged_at    timestamptz NOT NULL,
    current_step     text,
    next_due_at      timestamptz,
    overdue_steps    text[] NOT NULL DEFAULT '{}',
    updated_at       timestamptz NOT NULL DEFAULT now(),
    version          bigint NOT NULL
);
CREATE INDEX transitions_status_next_due ON transitions (status, next_due_at);
CREATE INDEX transitions_discharged_at ON transitions (discharged_at DESC);
