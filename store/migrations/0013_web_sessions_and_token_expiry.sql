-- Web sessions instead of the API token in a cookie: a random session id (only its SHA-256
-- kept) issued by POST /login after the credential is checked, with idle and absolute
-- expiry and a CSRF token of its own; and an expiry date for every API token.
CREATE TABLE web_sessions (
    id_hash      text PRIMARY KEY,
    subject      text NOT NULL,
    role         text NOT NULL,
    team         text,
    csrf_token   text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_seen_at timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,
    revoked_at   timestamptz
);
CREATE INDEX web_sessions_expiry ON web_sessions (expires_at);
ALTER TABLE api_tokens ADD COLUMN expires_at timestamptz;
