-- The attribution roster: the patients a practice or program is responsible for (site rule
-- `attribution: roster | pcp`). A patient is stored only as patient_key, the HMAC of one PID-3
-- identifier (assigning authority + id) computed as routing computes it (ingest/keys.py):
-- the identifier itself is never stored. One row per identifier hash; re-imports update it.
CREATE TABLE roster (
    patient_key         text PRIMARY KEY,
    assigning_authority text NOT NULL,
    practice            text NOT NULL,
    pcp_id              text,
    program             text,
    imported_at         timestamptz NOT NULL DEFAULT now(),
    source_file         text NOT NULL
);
CREATE INDEX roster_practice ON roster (practice);
