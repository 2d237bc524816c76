-- Secure by default on a laptop too: the development administrator's role may hold an API
-- token (the one `carebridge up` writes to .carebridge/dev-token; refused in production),
-- and one-time sign-in codes (only their SHA-256 kept) that the printed login URL carries,
-- each exchanged once, before it expires, for a web session.
ALTER TABLE api_tokens DROP CONSTRAINT api_tokens_role_check;
ALTER TABLE api_tokens ADD CONSTRAINT api_tokens_role_check
    CHECK (role IN ('care_manager', 'supervisor', 'operator', 'integration', 'auditor',
                    'developer'));

CREATE TABLE login_codes (
    code_hash   text PRIMARY KEY,
    subject     text NOT NULL,
    role        text NOT NULL,
    team        text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz
);
CREATE INDEX login_codes_expiry ON login_codes (expires_at);
