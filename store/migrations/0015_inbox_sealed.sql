-- The inbox encrypted at rest (issue 17 item 2): a message's raw bytes are kept only sealed by
-- the application (AES-256-GCM under the payload keyring, bound to the row's id), in
-- raw_sealed with the id of the key that sealed it (raw_key_id, for re-encryption). `raw`
-- holds plaintext only for rows written before this migration, until the Python step run by
-- `carebridge migrate` and at start-up (store/inbox.seal_plaintext) seals them and clears it.
-- Retention removes the sealed bytes (raw_removed_at says when); the row keeps its metadata,
-- content hash (retransmission detection), decision and ACK.
ALTER TABLE adt_inbox ALTER COLUMN raw DROP NOT NULL;
ALTER TABLE adt_inbox
    ADD COLUMN raw_sealed     bytea,
    ADD COLUMN raw_key_id     text,
    ADD COLUMN raw_removed_at timestamptz,
    ADD CONSTRAINT adt_inbox_sealed_with_key CHECK (raw_sealed IS NULL OR raw_key_id IS NOT NULL);

-- The dead letters' view named the plaintext column: it now says whether the bytes are kept.
DROP VIEW adt_dead_letters;
CREATE VIEW adt_dead_letters AS
    SELECT id, sending_facility, control_id, message_type, received_at, error, ack_code,
           raw_removed_at
    FROM adt_inbox WHERE status = 'rejected';

-- What retention and re-encryption look for, without reading the whole table.
CREATE INDEX adt_inbox_raw_held ON adt_inbox (received_at) WHERE raw_removed_at IS NULL;
CREATE INDEX adt_inbox_raw_key ON adt_inbox (raw_key_id) WHERE raw_sealed IS NOT NULL;
