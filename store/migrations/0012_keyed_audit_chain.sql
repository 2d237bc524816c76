-- The audit chain is keyed from now on (HMAC-SHA256, the key outside the database): rows
-- written before keep their unkeyed SHA-256 and say so, new rows say hmac-sha256.
ALTER TABLE audit_log ADD COLUMN hash_kind text NOT NULL DEFAULT 'sha256'
    CHECK (hash_kind IN ('sha256', 'hmac-sha256'));
