// Entry points of the walproposer extension: _PG_init and the SQL-callable
// functions. See cxx_guard.h for the rules at the C++/PostgreSQL boundary:
// the functions here hold no C++ object with a destructor.
extern "C" {
#include "postgres.h"

#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "access/xlog.h"
#include "postmaster/bgworker.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"
#include "utils/pg_lsn.h"
}

#include <cstring>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "cxx_guard.h"
#include "guc.h"
#include "shared_status.h"
#include "safekeeper_conn.h"
#include "walproposer/config.h"
#include "walproposer/configuration.h"
#include "walproposer/timeline_key.h"
#include "walproposer/version.h"

extern "C" {
PG_MODULE_MAGIC;

void _PG_init(void);
PG_FUNCTION_INFO_V1(walproposer_version);
PG_FUNCTION_INFO_V1(walproposer_status);
PG_FUNCTION_INFO_V1(walproposer_safekeepers);
PG_FUNCTION_INFO_V1(walproposer_standby_conninfo);
}

namespace {

void register_worker() {
    BackgroundWorker worker;
    std::memset(&worker, 0, sizeof worker);
    worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
    // Runs only on a primary: started once recovery has finished (also after
    // a standby is promoted). Restarted a second after it exits with a
    // nonzero status, which it does on every exit except at a server
    // shutdown (for example after pg_terminate_backend): COMMITs wait for it.
    worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
    worker.bgw_restart_time = 1;
    snprintf(worker.bgw_library_name, BGW_MAXLEN, "walproposer");
    snprintf(worker.bgw_function_name, BGW_MAXLEN, "walproposer_worker_main");
    snprintf(worker.bgw_name, BGW_MAXLEN, "walproposer");
    snprintf(worker.bgw_type, BGW_MAXLEN, "walproposer");
    RegisterBackgroundWorker(&worker);
}

Datum lsn_or_null(std::uint64_t lsn, bool* isnull) {
    *isnull = lsn == 0;
    return LSNGetDatum(lsn);
}

// The tenant or timeline id the worker uses: the setting, or (when empty) the
// system identifier as 32 hex digits. Written into `out` (33 bytes).
void effective_id(const char* setting, char* out) {
    char errbuf[256];
    out[0] = '\0';
    const std::uint64_t system_id = GetSystemIdentifier();
    if (!wp::pg::run_cxx(
            [&] {
                auto parsed = wp::parse_hex_id(setting ? setting : "");
                const std::string id = setting && setting[0] && parsed
                                           ? *parsed
                                           : wp::default_id_from_system_id(system_id);
                std::strncpy(out, id.c_str(), 32);
                out[32] = '\0';
            },
            errbuf, sizeof errbuf))
        elog(ERROR, "walproposer_status: %s", errbuf);
}

}  // namespace

void _PG_init(void) {
    if (!process_shared_preload_libraries_in_progress) {
        ereport(ERROR,
                (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                 errmsg("walproposer must be loaded via shared_preload_libraries"),
                 errhint("Add 'walproposer' to shared_preload_libraries in postgresql.conf "
                         "and restart the server.")));
    }
    wp::pg::define_gucs();
    wp::pg::install_shared_status_hooks();
    register_worker();
}

// primary_conninfo for a standby (or pg_receivewal's -d) that streams from
// every safekeeper of walproposer.safekeepers on this cluster's timeline, as
// `user_name` (NULL: libpq's default) and with the TLS options of
// walproposer.safekeeper_conninfo (sslmode, sslrootcert, sslcrl, sslcrldir).
Datum walproposer_standby_conninfo(PG_FUNCTION_ARGS) {
    char user[NAMEDATALEN] = "";
    if (!PG_ARGISNULL(0)) {
        char* given = text_to_cstring(PG_GETARG_TEXT_PP(0));
        if (std::strlen(given) >= sizeof user)
            ereport(ERROR, (errcode(ERRCODE_NAME_TOO_LONG),
                            errmsg("role name \"%s\" is too long", given)));
        std::strcpy(user, given);
        pfree(given);
    }
    char tenant[33], timeline[33];
    effective_id(wp::pg::guc_tenant_id, tenant);
    effective_id(wp::pg::guc_timeline_id, timeline);
    static char result[16384];  // static: large; built under run_cxx, copied out after
    char errbuf[512];
    bool empty = false;
    if (!wp::pg::run_cxx(
            [&] {
                auto setting = wp::parse_safekeepers_setting(wp::pg::guc_safekeepers);
                if (!setting) throw std::runtime_error(setting.message());
                empty = setting->addresses.empty() && setting->members.empty();
                std::vector<std::pair<std::string, std::string>> extra;
                if (user[0]) extra.emplace_back("user", user);
                auto conninfo = wp::pg::parse_safekeeper_conninfo(wp::pg::guc_safekeeper_conninfo);
                if (conninfo)
                    for (const auto& [keyword, value] : *conninfo)
                        if (keyword == "sslmode" || keyword == "sslrootcert" ||
                            keyword == "sslcrl" || keyword == "sslcrldir")
                            extra.emplace_back(keyword, value);
                const std::string text = wp::standby_conninfo(*setting, tenant, timeline, extra);
                if (text.size() >= sizeof result) throw std::runtime_error("connection string too long");
                std::memcpy(result, text.c_str(), text.size() + 1);
            },
            errbuf, sizeof errbuf))
        ereport(ERROR, (errmsg("walproposer_standby_conninfo: %s", errbuf)));
    if (empty)
        ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                        errmsg("walproposer.safekeepers is empty"),
                        errhint("Set walproposer.safekeepers and reload.")));
    PG_RETURN_TEXT_P(cstring_to_text(result));
}

Datum walproposer_version(PG_FUNCTION_ARGS) {
    (void)fcinfo;
    PG_RETURN_TEXT_P(cstring_to_text(wp::kVersion));
}

// One row: the proposer's own state.
Datum walproposer_status(PG_FUNCTION_ARGS) {
    static wp::pg::SharedStatus status;  // static: large, and trivially destructible
    wp::pg::read_shared_status(&status);

    TupleDesc tupdesc;
    if (get_call_result_type(fcinfo, nullptr, &tupdesc) != TYPEFUNC_COMPOSITE)
        elog(ERROR, "walproposer_status: return type must be a row type");
    tupdesc = BlessTupleDesc(tupdesc);

    Datum values[14];
    bool nulls[14] = {};
    values[0] = CStringGetTextDatum(status.state);
    values[1] = Int64GetDatum(static_cast<int64>(status.term));
    values[2] = lsn_or_null(status.commit_lsn, &nulls[2]);
    values[3] = lsn_or_null(status.local_flush_lsn, &nulls[3]);
    values[4] = lsn_or_null(status.truncate_lsn, &nulls[4]);
    values[5] = Int32GetDatum(status.safekeeper_count);
    values[6] = Int32GetDatum(status.worker_pid);
    nulls[6] = status.worker_pid == 0;
    values[7] = CStringGetTextDatum(status.message);
    nulls[7] = status.message[0] == '\0';
    char tenant_id[33], timeline_id[33];
    effective_id(wp::pg::guc_tenant_id, tenant_id);
    effective_id(wp::pg::guc_timeline_id, timeline_id);
    values[8] = CStringGetTextDatum(tenant_id);
    values[9] = CStringGetTextDatum(timeline_id);
    // Membership: NULL with the legacy list (no configuration).
    values[10] = Int64GetDatum(static_cast<int64>(status.configuration_generation));
    nulls[10] = status.configuration_generation == 0;
    values[11] = CStringGetTextDatum(status.members);
    nulls[11] = status.members[0] == '\0';
    values[12] = CStringGetTextDatum(status.new_members);
    nulls[12] = status.new_members[0] == '\0';
    // How long COMMITs have waited for the quorum (NULL: none waits).
    values[13] = Float8GetDatum(
        static_cast<double>(GetCurrentTimestamp() - status.commit_wait_since) / 1e6);
    nulls[13] = status.commit_wait_since == 0 || status.worker_pid == 0;
    HeapTuple tuple = heap_form_tuple(tupdesc, values, nulls);
    PG_RETURN_DATUM(HeapTupleGetDatum(tuple));
}

// One row per safekeeper that counts.
Datum walproposer_safekeepers(PG_FUNCTION_ARGS) {
    static wp::pg::SharedStatus status;
    wp::pg::read_shared_status(&status);
    InitMaterializedSRF(fcinfo, 0);
    ReturnSetInfo* rsinfo = reinterpret_cast<ReturnSetInfo*>(fcinfo->resultinfo);

    for (int i = 0; i < status.safekeeper_count && i < wp::pg::kStatusMaxSafekeepers; ++i) {
        const wp::pg::SafekeeperStatusRow& row = status.safekeepers[i];
        Datum values[7];
        bool nulls[7] = {};
        values[0] = CStringGetTextDatum(row.address);
        values[1] = Int64GetDatum(static_cast<int64>(row.node_id));
        nulls[1] = row.node_id == 0;
        values[2] = CStringGetTextDatum(row.state);
        values[3] = Int64GetDatum(static_cast<int64>(row.term));
        values[4] = lsn_or_null(row.flush_lsn, &nulls[4]);
        // Lag: WAL the primary has flushed that this safekeeper has not.
        const std::uint64_t lag = (row.flush_lsn != 0 && status.local_flush_lsn > row.flush_lsn)
                                      ? status.local_flush_lsn - row.flush_lsn
                                      : 0;
        values[5] = Int64GetDatum(static_cast<int64>(lag));
        nulls[5] = row.flush_lsn == 0;
        values[6] = CStringGetTextDatum(row.last_error);
        nulls[6] = row.last_error[0] == '\0';
        tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
    }
    return (Datum)0;
}
