-- The patient registry (store/registry.py): per opaque patient key, one document of the
-- demographics and contacts the feeds carry, sealed by the application (AES-256-GCM under
-- the payload keyring, bound to its row; key_id says which key, for `reencrypt`); the
-- encounter facts of each transition sealed the same way; and keyed blind indexes (HMAC of
-- normalised MRNs, birth dates, phone digits, name prefixes) that a search looks up instead
-- of decrypting the table. No column here holds PHI in plain text.
CREATE TABLE patients (
    patient_key text PRIMARY KEY,
    sealed      bytea NOT NULL,
    key_id      text NOT NULL,
    as_of       timestamptz,  -- the newest event applied: an older one only fills gaps
    merged_into text,         -- merged away (A40 ...) into this surviving key
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    CHECK (merged_into IS NULL OR merged_into <> patient_key)
);
CREATE INDEX patients_key_id ON patients (key_id);
CREATE INDEX patients_merged_into ON patients (merged_into) WHERE merged_into IS NOT NULL;

CREATE TABLE patient_search (
    kind        text NOT NULL,   -- mrn, birth_date, phone, name
    digest      bytea NOT NULL,  -- BlindIndex.digest(kind, normalised value)
    patient_key text NOT NULL REFERENCES patients (patient_key) ON DELETE CASCADE,
    PRIMARY KEY (kind, digest, patient_key)
);
CREATE INDEX patient_search_patient ON patient_search (patient_key);

CREATE TABLE encounter_details (
    transition_id text PRIMARY KEY,
    patient_key   text NOT NULL,
    sealed        bytea NOT NULL,
    key_id        text NOT NULL,
    updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX encounter_details_patient ON encounter_details (patient_key);
CREATE INDEX encounter_details_key_id ON encounter_details (key_id);
