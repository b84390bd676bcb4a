// GUC definitions and their check hooks. Check hooks validate with the
// PG-free parsers of include/walproposer/config.h (run under run_cxx) and
// report the reason through GUC_check_errdetail, so a bad value is refused
// at SET / ALTER SYSTEM / reload time with a clear message.
extern "C" {
#include "postgres.h"

#include "utils/guc.h"
}

#include <cctype>
#include <cstring>

#include "cxx_guard.h"
#include "guc.h"
#include "safekeeper_conn.h"
#include "walproposer/configuration.h"
#include "walproposer/config.h"
#include "walproposer/timeline_key.h"

namespace wp::pg {

char* guc_safekeepers = nullptr;
char* guc_tenant_id = nullptr;
char* guc_timeline_id = nullptr;
char* guc_application_name = nullptr;
char* guc_safekeeper_conninfo = nullptr;
char* guc_slot_name = nullptr;
int guc_connect_timeout_ms = 10000;
int guc_reconnect_timeout_ms = 1000;
int guc_shutdown_timeout_ms = 5000;

namespace {

// Validation in C++; fills errbuf with the reason on failure.
bool safekeepers_are_valid(const char* value, char* errbuf, std::size_t size) {
    bool valid = false;
    const bool completed = run_cxx(
        [&] {
            auto parsed = parse_safekeepers_setting(value ? value : "");
            valid = parsed.ok();
            if (!valid) snprintf(errbuf, size, "%s", parsed.message().c_str());
        },
        errbuf, size);
    return completed && valid;
}

bool hex_id_is_valid(const char* value, char* errbuf, std::size_t size) {
    if (value == nullptr || value[0] == '\0') return true;  // derived from the system id
    bool valid = false;
    const bool completed = run_cxx(
        [&] {
            auto parsed = parse_hex_id(value);
            valid = parsed.ok();
            if (!valid) snprintf(errbuf, size, "%s", parsed.message().c_str());
        },
        errbuf, size);
    return completed && valid;
}

bool check_safekeepers(char** newval, void**, GucSource) {
    char errbuf[kErrorBufferSize];
    if (safekeepers_are_valid(*newval, errbuf, sizeof errbuf)) return true;
    GUC_check_errdetail("%s", errbuf);
    GUC_check_errhint("Use a comma-separated list of host:port, for example "
                      "'sk1:5454,sk2:5454,sk3:5454', or of id=host:port (a membership "
                      "configuration, with each safekeeper's --id), for example "
                      "'1=sk1:5454,2=sk2:5454,3=sk3:5454'.");
    return false;
}

bool check_hex_id(char** newval, void**, GucSource) {
    char errbuf[kErrorBufferSize];
    if (hex_id_is_valid(*newval, errbuf, sizeof errbuf)) return true;
    GUC_check_errdetail("%s", errbuf);
    GUC_check_errhint("Use 32 hexadecimal digits, or an empty string to derive it from the "
                      "system identifier.");
    return false;
}

bool check_application_name(char** newval, void**, GucSource) {
    const char* value = *newval;
    const std::size_t length = value ? std::strlen(value) : 0;
    if (length == 0 || length >= NAMEDATALEN) {
        GUC_check_errdetail("The application name must have 1 to %d characters.",
                            NAMEDATALEN - 1);
        return false;
    }
    for (std::size_t i = 0; i < length; ++i) {
        if (value[i] < 32 || value[i] > 126 || value[i] == ',') {
            GUC_check_errdetail("The application name may contain only printable ASCII "
                                "characters other than a comma.");
            return false;
        }
    }
    return true;
}

bool check_safekeeper_conninfo(char** newval, void**, GucSource) {
    char errbuf[kErrorBufferSize];
    bool valid = false;
    const bool completed = run_cxx(
        [&] {
            auto parsed = parse_safekeeper_conninfo(*newval ? *newval : "");
            valid = parsed.ok();
            if (!valid) snprintf(errbuf, sizeof errbuf, "%s", parsed.message().c_str());
        },
        errbuf, sizeof errbuf);
    if (completed && valid) return true;
    GUC_check_errdetail("%s", errbuf);
    GUC_check_errhint("Use libpq keyword=value options, for example 'user=walproposer "
                      "passfile=/etc/walproposer/pgpass sslmode=verify-full'.");
    return false;
}

bool check_slot_name(char** newval, void**, GucSource) {
    const char* value = *newval;
    const std::size_t length = value ? std::strlen(value) : 0;
    if (length == 0 || length >= NAMEDATALEN) {
        GUC_check_errdetail("The slot name must have 1 to %d characters.", NAMEDATALEN - 1);
        return false;
    }
    for (std::size_t i = 0; i < length; ++i) {
        const char c = value[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) {
            GUC_check_errdetail("Replication slot names may only contain lower case letters, "
                                "numbers, and the underscore character.");
            return false;
        }
    }
    return true;
}

}  // namespace

void define_gucs() {
    DefineCustomStringVariable(
        "walproposer.safekeepers",
        "Safekeepers to stream WAL to, as host:port,... or as id=host:port,... (membership).",
        "A commit is confirmed when a majority of them has flushed its WAL. Reloadable: the "
        "worker reconnects to the new set.",
        &guc_safekeepers, "", PGC_SIGHUP, 0, check_safekeepers, nullptr, nullptr);
    DefineCustomStringVariable(
        "walproposer.tenant_id", "Tenant id of this cluster's WAL on the safekeepers.",
        "32 hexadecimal digits; empty derives it from the system identifier.", &guc_tenant_id,
        "", PGC_POSTMASTER, 0, check_hex_id, nullptr, nullptr);
    DefineCustomStringVariable(
        "walproposer.timeline_id", "Timeline id of this cluster's WAL on the safekeepers.",
        "32 hexadecimal digits; empty derives it from the system identifier.", &guc_timeline_id,
        "", PGC_POSTMASTER, 0, check_hex_id, nullptr, nullptr);
    DefineCustomStringVariable(
        "walproposer.application_name",
        "Name the worker uses in synchronous_standby_names and pg_stat_replication.", nullptr,
        &guc_application_name, "walproposer", PGC_SIGHUP, 0, check_application_name, nullptr,
        nullptr);
    DefineCustomStringVariable(
        "walproposer.safekeeper_conninfo",
        "libpq connection options for every safekeeper connection (user, passfile, sslmode, ...).",
        "Keyword=value pairs as in a libpq connection string, without host, hostaddr, port, "
        "dbname, options or replication; they replace the defaults user=walproposer and "
        "sslmode=prefer. Keep passwords in a passfile, not here. A change applies from the next "
        "connection to each safekeeper; open connections are kept.",
        &guc_safekeeper_conninfo, "", PGC_SIGHUP, GUC_SUPERUSER_ONLY, check_safekeeper_conninfo,
        nullptr, nullptr);
    DefineCustomStringVariable(
        "walproposer.slot_name",
        "Physical replication slot that keeps WAL the safekeepers still need.", nullptr,
        &guc_slot_name, "walproposer", PGC_POSTMASTER, 0, check_slot_name, nullptr, nullptr);
    DefineCustomIntVariable("walproposer.connect_timeout",
                            "Time allowed to connect to a safekeeper.", nullptr,
                            &guc_connect_timeout_ms, 10000, 100, 3600 * 1000, PGC_SIGHUP,
                            GUC_UNIT_MS, nullptr, nullptr, nullptr);
    DefineCustomIntVariable("walproposer.reconnect_timeout",
                            "Back-off before reconnecting to a safekeeper that failed.", nullptr,
                            &guc_reconnect_timeout_ms, 1000, 10, 3600 * 1000, PGC_SIGHUP,
                            GUC_UNIT_MS, nullptr, nullptr, nullptr);
    DefineCustomIntVariable(
        "walproposer.shutdown_timeout",
        "At shutdown, how long the worker waits for the quorum to confirm flushed WAL.", nullptr,
        &guc_shutdown_timeout_ms, 5000, 0, 600 * 1000, PGC_SIGHUP, GUC_UNIT_MS, nullptr, nullptr,
        nullptr);
    MarkGUCPrefixReserved("walproposer");
}

}  // namespace wp::pg
