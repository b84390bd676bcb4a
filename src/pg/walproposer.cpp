// Entry points of the walproposer extension: _PG_init and the SQL-callable
// functions. PostgreSQL headers come first, and only in src/pg/ files.
//
// Contract: every extern "C" entry point catches C++ exceptions and raises
// the PostgreSQL error after the catch block has ended, so no C++ frame is
// unwound by longjmp and no exception crosses into PostgreSQL.
extern "C" {
#include "postgres.h"

#include "fmgr.h"
#include "miscadmin.h"
#include "utils/builtins.h"
}

#include "walproposer/version.h"

extern "C" {
PG_MODULE_MAGIC;

void _PG_init(void);
PG_FUNCTION_INFO_V1(walproposer_version);
}

void _PG_init(void) {
    if (!process_shared_preload_libraries_in_progress) {
        ereport(ERROR,
                (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                 errmsg("walproposer must be loaded via shared_preload_libraries"),
                 errhint("Add 'walproposer' to shared_preload_libraries in postgresql.conf "
                         "and restart the server.")));
    }
}

Datum walproposer_version(PG_FUNCTION_ARGS) {
    (void)fcinfo;
    PG_RETURN_TEXT_P(cstring_to_text(wp::kVersion));
}
