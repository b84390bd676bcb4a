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
DROP EXTENSION walproposer;
