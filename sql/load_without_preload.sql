-- Without shared_preload_libraries the library refuses to load, and says how
-- to configure it.
SHOW shared_preload_libraries;
LOAD 'walproposer';
CREATE EXTENSION walproposer;
SELECT count(*) FROM pg_extension WHERE extname = 'walproposer';
