-- A transition has an owner (issue 17 item 4): the care manager who works it, assigned by a
-- supervisor or claimed. A staff subject, not patient data. "My patients" and the
-- supervisor's team view filter on it.
ALTER TABLE transitions ADD COLUMN owner text;
CREATE INDEX transitions_owner ON transitions (owner) WHERE status = 'active';
