-- A transition's care team: the practice's (the roster's practice, or site.yaml care_teams by
-- practice or PCP), decided when its discharge arrives (ingest/routing.py), so worklists,
-- token teams and digests follow the practice, not the discharging hospital's code. No row
-- (transitions started before, or straight on Temporal): the facility, as before. No PHI:
-- team names and how each was decided.
CREATE TABLE care_teams (
    transition_id text PRIMARY KEY,
    team          text NOT NULL,
    decided_by    text NOT NULL,
    decided_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX care_teams_team ON care_teams (team);

-- Who was on duty for the escalation's role when it fired (site.yaml notifications.on_call),
-- named in its message; kept so a redelivery names the same person. A staff name, not PHI.
ALTER TABLE notifications ADD COLUMN on_duty text;
