// The driver's inputs and settings, and configuration reloads; see
// worker_settings.h.
extern "C" {
#include "postgres.h"

#include "access/timeline.h"
#include "access/xlog.h"
#include "access/xlog_internal.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "nodes/pg_list.h"
#include "storage/fd.h"
#include "utils/guc.h"
#include "utils/timestamp.h"
}

#include <cstring>
#include <string>
#include <utility>

#include "configuration_file.h"
#include "cxx_guard.h"
#include "driver.h"
#include "guc.h"
#include "term_history_file.h"
#include "walproposer/config.h"
#include "walproposer/configuration.h"
#include "worker_settings.h"
#include "worker_slot.h"
#include "worker_syncrep.h"

namespace wp::pg {

namespace {

// Reads the PG timeline history file's content for greetings (empty on 1).
void read_timeline_history(TimeLineID tli, char** content, int* length) {
    *content = nullptr;
    *length = 0;
    if (tli <= 1) return;
    char path[MAXPGPATH];
    TLHistoryFilePath(path, tli);
    FILE* file = AllocateFile(path, "r");
    if (file == nullptr) return;
    StringInfoData buffer;
    initStringInfo(&buffer);
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, file)) > 0) appendBinaryStringInfo(&buffer, chunk, n);
    FreeFile(file);
    *content = buffer.data;
    *length = buffer.len;
}

// Where timeline `tli` branched off its parent (0 on timeline 1). A corrupt
// history file raises ERROR here, before any C++ object exists.
XLogRecPtr timeline_switch_point(TimeLineID tli) {
    if (tli <= 1) return InvalidXLogRecPtr;
    List* history = readTimeLineHistory(tli);
    XLogRecPtr point = InvalidXLogRecPtr;
    ListCell* cell;
    foreach (cell, history) {
        TimeLineHistoryEntry* entry = static_cast<TimeLineHistoryEntry*>(lfirst(cell));
        if (entry->tli == tli) point = entry->begin;
    }
    list_free_deep(history);
    return point;
}

}  // namespace

void worker_gather_driver_inputs(DriverInputs* inputs) {
    std::memset(inputs, 0, sizeof *inputs);
    inputs->system_id = GetSystemIdentifier();
    inputs->tli = GetWALInsertionTimeLine();
    read_timeline_history(inputs->tli, &inputs->history_content, &inputs->history_length);
    inputs->switch_point = timeline_switch_point(inputs->tli);
    inputs->random_seed = static_cast<uint64>(GetCurrentTimestamp()) ^ (uint64)MyProcPid;
}

XLogRecPtr worker_timeline_start_point() {
    XLogRecPtr point = worker_slot_restart_lsn();
    if (point == InvalidXLogRecPtr) point = GetRedoRecPtr();
    return point - XLogSegmentOffset(point, wal_segment_size);
}

Driver* worker_create_driver(const DriverInputs& inputs, char* errbuf, std::size_t errbuf_size) {
    Driver* driver = nullptr;
    const bool completed = run_cxx(
        [&] {
            DriverSettings settings;
            auto setting = wp::parse_safekeepers_setting(guc_safekeepers);
            if (!setting) {
                snprintf(errbuf, errbuf_size, "walproposer.safekeepers: %s",
                         setting.message().c_str());
                return;
            }
            if (!setting->member_form) {
                settings.safekeepers = std::move(setting->addresses);
            } else {
                // The configuration last persisted here; the first time,
                // generation 1 of the setting's members (docs/extension.md,
                // "Membership"). The setting is the set asked for.
                auto persisted = load_configuration();
                if (!persisted) {
                    snprintf(errbuf, errbuf_size, "%s", persisted.message().c_str());
                    return;
                }
                if (*persisted) {
                    settings.configuration = std::move(**persisted);
                } else {
                    // Persisted before anything runs under it: a later start
                    // with a different setting then begins from this set and
                    // changes it through a joint configuration.
                    settings.configuration.generation = 1;
                    settings.configuration.members = setting->members;
                    wp::Status saved = save_configuration(settings.configuration);
                    if (!saved.ok()) {
                        snprintf(errbuf, errbuf_size, "cannot persist the membership configuration: %s",
                                 saved.message().c_str());
                        return;
                    }
                }
                settings.wanted_members = std::move(setting->members);
            }
            settings.tenant_hex = guc_tenant_id[0]
                                      ? *wp::parse_hex_id(guc_tenant_id)
                                      : wp::default_id_from_system_id(inputs.system_id);
            settings.timeline_hex = guc_timeline_id[0]
                                        ? *wp::parse_hex_id(guc_timeline_id)
                                        : wp::default_id_from_system_id(inputs.system_id);
            settings.application_name = guc_application_name;
            auto conninfo = parse_safekeeper_conninfo(guc_safekeeper_conninfo);
            if (!conninfo) {
                snprintf(errbuf, errbuf_size, "walproposer.safekeeper_conninfo: %s",
                         conninfo.message().c_str());
                return;
            }
            settings.extra_conninfo = std::move(*conninfo);
            settings.connect_timeout_ms = guc_connect_timeout_ms;
            settings.reconnect_timeout_ms = guc_reconnect_timeout_ms;
            settings.timeline_start_lsn = inputs.timeline_start;
            settings.timeline_switch_point = inputs.switch_point;
            settings.random_seed = inputs.random_seed;
            auto history = load_term_history(inputs.tli);
            if (!history) {
                snprintf(errbuf, errbuf_size, "%s", history.message().c_str());
                return;
            }
            settings.own_term_history = std::move(*history);
            wp::ProposerGreeting& greeting = settings.greeting;
            greeting.system_id = inputs.system_id;
            greeting.pg_version = PG_VERSION_NUM;
            greeting.wal_segment_size = static_cast<std::uint32_t>(wal_segment_size);
            greeting.pg_timeline = inputs.tli;
            greeting.tenant_id = *wp::parse_id(settings.tenant_hex);
            greeting.timeline_id = *wp::parse_id(settings.timeline_hex);
            for (int i = 0; i < 16; ++i) {
                greeting.proposer_id[i] =
                    static_cast<std::uint8_t>((inputs.random_seed >> ((i % 8) * 8)) ^ i);
            }
            if (inputs.history_content)
                greeting.pg_timeline_history.assign(inputs.history_content, inputs.history_length);
            driver = new Driver(std::move(settings));
        },
        errbuf, errbuf_size);
    return completed ? driver : nullptr;
}

ReloadAction worker_reload_config(Driver* driver) {
    char* old_list = pstrdup(guc_safekeepers);
    char* old_conninfo = pstrdup(guc_safekeeper_conninfo);
    ProcessConfigFile(PGC_SIGHUP);
    if (driver != nullptr && strcmp(old_conninfo, guc_safekeeper_conninfo) != 0) {
        char errbuf[kErrorBufferSize];
        bool applied = false;
        const bool completed = run_cxx(
            [&] {
                auto conninfo = parse_safekeeper_conninfo(guc_safekeeper_conninfo);
                if (!conninfo) {
                    snprintf(errbuf, sizeof errbuf, "%s", conninfo.message().c_str());
                    return;
                }
                driver->set_extra_conninfo(std::move(*conninfo));
                applied = true;
            },
            errbuf, sizeof errbuf);
        if (completed && applied)
            elog(LOG, "walproposer: walproposer.safekeeper_conninfo changed; new connections to "
                      "safekeepers use it");
        else
            ereport(WARNING, (errmsg("walproposer: walproposer.safekeeper_conninfo not applied: %s",
                                     errbuf)));
    }
    pfree(old_conninfo);
    worker_syncrep_reload_config();
    ReloadAction action = ReloadAction::kNone;
    if (strcmp(old_list, guc_safekeepers) != 0) {
        char errbuf[kErrorBufferSize];
        bool member_form = false;
        const bool parsed = run_cxx(
            [&] {
                auto setting = wp::parse_safekeepers_setting(guc_safekeepers);
                member_form = setting.ok() && setting->member_form;
            },
            errbuf, sizeof errbuf);
        const bool configured = driver != nullptr && driver->configuration().generation != 0;
        if (parsed && configured && member_form) {
            elog(LOG, "walproposer: safekeepers changed from \"%s\" to \"%s\"; changing the "
                      "membership through a joint configuration",
                 old_list, guc_safekeepers);
            action = ReloadAction::kChangeMembership;
        } else if (parsed && configured && !member_form) {
            ereport(WARNING,
                    (errmsg("walproposer: walproposer.safekeepers changed to the plain list \"%s\", "
                            "but this primary runs a membership configuration; keeping it",
                            guc_safekeepers),
                     errhint("A membership configuration cannot be dropped; write the list as "
                             "id=host:port to change the set.")));
        } else {
            elog(LOG, "walproposer: safekeepers changed from \"%s\" to \"%s\"; reconnecting",
                 old_list, guc_safekeepers);
            action = ReloadAction::kRestartDriver;
        }
    }
    pfree(old_list);
    return action;
}

bool worker_request_membership(Driver* driver, char* errbuf, std::size_t errbuf_size) {
    bool asked = false;
    const bool completed = run_cxx(
        [&] {
            auto setting = wp::parse_safekeepers_setting(guc_safekeepers);
            if (!setting) {
                snprintf(errbuf, errbuf_size, "%s", setting.message().c_str());
                return;
            }
            wp::Status s = driver->request_membership(setting->members);
            if (!s.ok()) {
                snprintf(errbuf, errbuf_size, "%s", s.message().c_str());
                return;
            }
            asked = true;
        },
        errbuf, errbuf_size);
    return completed && asked;
}

}  // namespace wp::pg
