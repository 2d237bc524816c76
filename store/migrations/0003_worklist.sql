-- Worklists and reports read the projection: step summaries, assignees, readmission.
ALTER TABLE transitions
    ADD COLUMN steps jsonb NOT NULL DEFAULT '[]',
    ADD COLUMN assignees text[] NOT NULL DEFAULT '{}',
    ADD COLUMN readmitted_at timestamptz;
CREATE INDEX transitions_assignees ON transitions USING gin (assignees);
CREATE INDEX transitions_facility_status ON transitions (facility, status);
