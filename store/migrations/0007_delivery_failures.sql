-- Why an e-mail or page did not go out (the last refusal or error), and which transport the
-- transition chose for it, so an operator can see and redeliver it.
ALTER TABLE notifications ADD COLUMN transport text;
ALTER TABLE notifications ADD COLUMN failure text;

-- One digest per team and day: a retry after a partial failure sends only what is missing.
CREATE TABLE digest_deliveries (
    team         text NOT NULL,
    day          date NOT NULL,
    delivered_at timestamptz,
    failure      text,
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (team, day)
);
CREATE INDEX digest_deliveries_undelivered ON digest_deliveries (day) WHERE delivered_at IS NULL;
