-- MSH-10 is unique only within a sending application, and senders reset their counters: a
-- message is a retransmission only when its sending application, facility, control id AND
-- content match a stored one. A different message that reuses a control id is stored as its
-- own row (never dropped behind the first one's ACK).
ALTER TABLE adt_inbox ADD COLUMN sending_application text;
ALTER TABLE adt_inbox ADD COLUMN content_hash bytea;
DROP INDEX adt_inbox_control_id_unique;
CREATE UNIQUE INDEX adt_inbox_retransmission ON adt_inbox
    ((coalesce(sending_application, '')), (coalesce(sending_facility, '')), control_id,
     content_hash)
    WHERE reprocessed_from IS NULL AND control_id IS NOT NULL AND content_hash IS NOT NULL;
CREATE INDEX adt_inbox_control_id ON adt_inbox (sending_facility, control_id)
    WHERE reprocessed_from IS NULL;
