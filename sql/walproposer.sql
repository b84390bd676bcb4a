-- The extension on a server that preloads the library.
SHOW shared_preload_libraries;
CREATE EXTENSION walproposer;
SELECT extversion FROM pg_extension WHERE extname = 'walproposer';
SELECT walproposer_version() = '1.0.0' AS library_version_matches;
-- Objects that belong to the extension.
SELECT pg_describe_object(classid, objid, 0) AS object
  FROM pg_depend
 WHERE refclassid = 'pg_extension'::regclass
   AND refobjid = (SELECT oid FROM pg_extension WHERE extname = 'walproposer')
 ORDER BY 1;

-- Settings and their defaults.
SELECT name, setting, unit, context FROM pg_settings
 WHERE name LIKE 'walproposer.%' ORDER BY name;

-- With no safekeepers configured the worker runs, idle, and says so.
SELECT state IS NOT NULL AS has_state, term, commit_lsn, safekeepers, pid IS NOT NULL AS running,
       message
  FROM walproposer_status;
-- The ids default to the system identifier as 32 hex digits.
SELECT tenant_id = lpad(to_hex(system_identifier), 32, '0') AS tenant_is_system_id,
       timeline_id = tenant_id AS timeline_is_system_id
  FROM walproposer_status, pg_control_system();
SELECT count(*) AS safekeeper_rows FROM walproposer_safekeepers;
SELECT application_name, state FROM pg_stat_replication;

-- Bad values are refused when set, with the reason.
ALTER SYSTEM SET walproposer.safekeepers = 'localhost';
ALTER SYSTEM SET walproposer.safekeepers = 'localhost:0';
ALTER SYSTEM SET walproposer.safekeepers = 'a:5454,a:5454';
ALTER SYSTEM SET walproposer.safekeepers = 'a:5454,,b:5454';
ALTER SYSTEM SET walproposer.safekeepers = 'bad host:5454';
ALTER SYSTEM SET walproposer.safekeepers = '1=sk1:5454,sk2:5454';
ALTER SYSTEM SET walproposer.safekeepers = '1=sk1:5454,1=sk2:5454';
ALTER SYSTEM SET walproposer.safekeepers = '0=sk1:5454';
ALTER SYSTEM SET walproposer.tenant_id = '1234';
ALTER SYSTEM SET walproposer.timeline_id = 'zz345678901234567890123456789012';
ALTER SYSTEM SET walproposer.application_name = '';
ALTER SYSTEM SET walproposer.application_name = 'a,b';
ALTER SYSTEM SET walproposer.slot_name = 'Bad-Name';
ALTER SYSTEM SET walproposer.safekeeper_conninfo = 'host=evil port=1';
ALTER SYSTEM SET walproposer.safekeeper_conninfo = 'user';
ALTER SYSTEM SET walproposer.safekeeper_conninfo = 'no_such_keyword=1';
ALTER SYSTEM SET walproposer.safekeeper_conninfo = 'user=wp options=''-c tenant_id=x''';
ALTER SYSTEM SET walproposer.safekeeper_conninfo = 'sslmode=verify_full';
ALTER SYSTEM SET walproposer.connect_timeout = '10';
ALTER SYSTEM SET walproposer.reconnect_timeout = -1;
ALTER SYSTEM SET walproposer.shutdown_timeout = '2h';
SET walproposer.safekeepers = 'localhost:5454';
SET walproposer.safekeeper_conninfo = 'user=wp';
SET walproposer.unknown_setting = 1;
-- Good values are accepted (and reset again).
ALTER SYSTEM SET walproposer.safekeepers = 'sk1:5454, sk2:5454,[::1]:5455';
ALTER SYSTEM SET walproposer.safekeepers = '1=sk1:5454, 2=sk2:5454,3=[::1]:5455';
ALTER SYSTEM SET walproposer.tenant_id = '0123456789ABCDEF0123456789abcdef';
ALTER SYSTEM SET walproposer.safekeeper_conninfo = 'user=walproposer passfile=/etc/walproposer/pgpass sslmode=prefer';
ALTER SYSTEM RESET ALL;

-- A standby's primary_conninfo needs safekeepers to list.
SELECT walproposer_standby_conninfo('replica');

-- Monitoring access only.
CREATE ROLE wp_regress_nobody;
SET ROLE wp_regress_nobody;
SELECT * FROM walproposer_status;
-- The safekeeper connection options are for superusers only.
SHOW walproposer.safekeeper_conninfo;
RESET ROLE;
DROP ROLE wp_regress_nobody;
DROP EXTENSION walproposer;
