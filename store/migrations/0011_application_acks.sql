-- Enhanced mode: the application ACK is a message of its own to the sender's inbound port.
-- Where it went and what became of it: pending, sent, failed (with the reason), or kept
-- (no destination configured for this sender: site.yaml application_acks).
ALTER TABLE adt_inbox ADD COLUMN application_ack_to text;
ALTER TABLE adt_inbox ADD COLUMN application_ack_status text
    CHECK (application_ack_status IN ('pending', 'sent', 'failed', 'kept'));
ALTER TABLE adt_inbox ADD COLUMN application_ack_error text;
ALTER TABLE adt_inbox ADD COLUMN application_ack_attempts integer NOT NULL DEFAULT 0;
CREATE INDEX adt_inbox_application_ack_unsent ON adt_inbox (id)
    WHERE application_ack_status IN ('pending', 'failed');
