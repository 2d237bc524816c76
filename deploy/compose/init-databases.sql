-- Runs once, when the postgresql volume is first initialised (docker-entrypoint-initdb.d).
-- Temporal's auto-setup creates its own databases (temporal, temporal_visibility) as the
-- superuser. carebridge gets two roles: carebridge_owner owns the database and runs the
-- migrations (`carebridge migrate --grant-to carebridge`); carebridge, the role the
-- application runs as, gets data rights only (INSERT and SELECT on the audit log, no DDL),
-- so the application cannot alter or drop the audit log or its append-only trigger.
CREATE ROLE carebridge_owner WITH LOGIN PASSWORD 'carebridge-owner';
CREATE ROLE carebridge WITH LOGIN PASSWORD 'carebridge';
CREATE DATABASE carebridge OWNER carebridge_owner;
REVOKE ALL ON DATABASE carebridge FROM PUBLIC;
GRANT CONNECT ON DATABASE carebridge TO carebridge;
\c carebridge
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
ALTER SCHEMA public OWNER TO carebridge_owner;
