-- A merge (A34, A36, A39, A40, A47) moves the merged-away patient's encounters to the
-- surviving patient and keeps the merged-away key here, so a late message under the old
-- identifier still lands on the survivor (routing follows merged_key -> surviving_key, a
-- bounded chain). Keys are the HMACs routing computes (ingest/keys.py): no identifier is
-- stored. One row per merged-away key: repeating a merge changes nothing.
CREATE TABLE patient_aliases (
    merged_key    text PRIMARY KEY,
    surviving_key text NOT NULL,
    event_type    text NOT NULL,
    merged_at     timestamptz NOT NULL DEFAULT now(),
    CHECK (merged_key <> surviving_key)
);
CREATE INDEX patient_aliases_surviving ON patient_aliases (surviving_key);
