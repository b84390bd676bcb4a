-- walproposer extension objects, version 1.0
\echo Use "CREATE EXTENSION walproposer" to load this file. \quit

-- The version of the loaded shared library (must match the extension's).
CREATE FUNCTION walproposer_version() RETURNS text
AS 'MODULE_PATHNAME', 'walproposer_version'
LANGUAGE C STRICT VOLATILE;

-- The proposer's own state: one row. See docs/extension.md for each column.
CREATE FUNCTION walproposer_status(
    OUT state text,
    OUT term bigint,
    OUT commit_lsn pg_lsn,
    OUT flush_lsn pg_lsn,
    OUT truncate_lsn pg_lsn,
    OUT safekeepers integer,
    OUT pid integer,
    OUT message text,
    OUT tenant_id text,
    OUT timeline_id text,
    OUT generation bigint,
    OUT members text,
    OUT new_members text,
    OUT commit_wait_seconds double precision)
RETURNS record
AS 'MODULE_PATHNAME', 'walproposer_status'
LANGUAGE C STRICT VOLATILE;

-- One row per safekeeper that counts (the members of the configuration in force).
CREATE FUNCTION walproposer_safekeepers(
    OUT address text,
    OUT node_id bigint,
    OUT state text,
    OUT term bigint,
    OUT flush_lsn pg_lsn,
    OUT lag_bytes bigint,
    OUT last_error text)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'walproposer_safekeepers'
LANGUAGE C STRICT VOLATILE;

-- primary_conninfo for a standby that streams from the safekeepers (all of
-- walproposer.safekeepers, this cluster's tenant and timeline ids, the TLS
-- options of walproposer.safekeeper_conninfo), as `user_name` when given.
-- Superusers only, as walproposer.safekeeper_conninfo. docs/replication.md.
CREATE FUNCTION walproposer_standby_conninfo(user_name text DEFAULT NULL) RETURNS text
AS 'MODULE_PATHNAME', 'walproposer_standby_conninfo'
LANGUAGE C STABLE;
REVOKE ALL ON FUNCTION walproposer_standby_conninfo(text) FROM PUBLIC;

CREATE VIEW walproposer_status AS SELECT * FROM walproposer_status();
CREATE VIEW walproposer_safekeepers AS SELECT * FROM walproposer_safekeepers();

REVOKE ALL ON FUNCTION walproposer_status() FROM PUBLIC;
REVOKE ALL ON FUNCTION walproposer_safekeepers() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION walproposer_status() TO pg_monitor;
GRANT EXECUTE ON FUNCTION walproposer_safekeepers() TO pg_monitor;
GRANT SELECT ON walproposer_status, walproposer_safekeepers TO pg_monitor;
