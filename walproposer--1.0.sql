-- walproposer extension objects, version 1.0
\echo Use "CREATE EXTENSION walproposer" to load this file. \quit

-- The version of the loaded shared library (must match the extension's).
CREATE FUNCTION walproposer_version() RETURNS text
AS 'MODULE_PATHNAME', 'walproposer_version'
LANGUAGE C STRICT VOLATILE;
