-- Runs once, when the postgresql volume is first initialised (docker-entrypoint-initdb.d).
-- Temporal's auto-setup creates its own databases (temporal, temporal_visibility) as the
-- superuser; carebridge gets a separate role and database it owns.
CREATE ROLE carebridge WITH LOGIN PASSWORD 'carebridge';
CREATE DATABASE carebridge OWNER carebridge;
REVOKE ALL ON DATABASE carebridge FROM PUBLIC;
