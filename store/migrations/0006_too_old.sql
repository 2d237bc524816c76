-- A discharge that arrives after its transition period has ended (a replayed queue, a first
-- load of old messages) is kept with its own status, so the message browser can filter it.
ALTER TABLE adt_inbox DROP CONSTRAINT adt_inbox_status_check;
ALTER TABLE adt_inbox ADD CONSTRAINT adt_inbox_status_check
    CHECK (status IN ('received', 'processed', 'duplicate', 'ignored', 'rejected', 'no_protocol',
                      'too_old'));
