#include "send_wal/replication_commands.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdio>

#include "send_wal/wal_sender.h"
#include "walproposer/pg_timeline_history.h"
#include "wire/replication_command.h"

namespace wp::sk {
namespace {

std::string history_file_name(std::uint32_t tli) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%08X.history", tli);
    return buf;
}

std::string format_segment_size(std::uint32_t bytes) {
    if (bytes % (1u << 30) == 0) return std::to_string(bytes >> 30) + "GB";
    if (bytes % (1u << 20) == 0) return std::to_string(bytes >> 20) + "MB";
    return std::to_string(bytes >> 10) + "kB";
}

struct Resolved {
    std::shared_ptr<Timeline> timeline;
    std::string error;  // set when timeline is null
    const char* sqlstate = sqlstate::kUndefinedObject;
};

Resolved resolve_timeline(const ReplicationContext& ctx) {
    Resolved r;
    if (ctx.tenant_id && ctx.timeline_id) {
        r.timeline = ctx.registry->find(*ctx.tenant_id, *ctx.timeline_id);
        if (!r.timeline)
            r.error = "timeline " + TimelineKey{*ctx.tenant_id, *ctx.timeline_id}.to_string() +
                      " does not exist on this safekeeper";
        return r;
    }
    if (ctx.tenant_id || ctx.timeline_id) {
        r.sqlstate = sqlstate::kInvalidParameterValue;
        r.error = "give both tenant_id and timeline_id in the startup options, or neither";
        return r;
    }
    auto all = ctx.registry->list();
    if (all.size() == 1) {
        r.timeline = all.front();
        return r;
    }
    r.error = all.empty() ? "this safekeeper holds no timeline yet"
                          : "this safekeeper holds " + std::to_string(all.size()) +
                                " timelines; choose one with options='-c tenant_id=<hex> -c "
                                "timeline_id=<hex>'";
    return r;
}

// Resolves and checks that the timeline can serve WAL (active, identity
// known). On failure queues the ErrorResponse and returns null.
std::shared_ptr<Timeline> serving_timeline(PgConnection& conn, const ReplicationContext& ctx,
                                           TimelineSnapshot& snap) {
    Resolved r = resolve_timeline(ctx);
    if (!r.timeline) {
        conn.send_error(r.sqlstate, r.error);
        return nullptr;
    }
    snap = r.timeline->snapshot();
    if (snap.state != TimelineState::kActive) {
        conn.send_error(sqlstate::kObjectNotInPrerequisiteState,
                        "timeline " + r.timeline->name() + " is " +
                            timeline_state_name(snap.state) +
                            (snap.last_error.empty() ? "" : ": " + snap.last_error));
        return nullptr;
    }
    if (snap.system_id == 0 || snap.pg_timeline == 0) {
        conn.send_error(
            sqlstate::kObjectNotInPrerequisiteState,
            "timeline " + r.timeline->name() + " has not been written by a primary yet");
        return nullptr;
    }
    return r.timeline;
}

void identify_system(PgConnection& conn, const ReplicationContext& ctx) {
    TimelineSnapshot snap;
    auto tl = serving_timeline(conn, ctx, snap);
    if (!tl) return;
    const Lsn xlogpos = std::max(snap.commit_lsn, snap.timeline_start_lsn);
    conn.send_typed_result({{"systemid", kTextOid},
                            {"timeline", kInt4Oid},
                            {"xlogpos", kTextOid},
                            {"dbname", kTextOid}},
                           {{std::to_string(snap.system_id), std::to_string(snap.pg_timeline),
                             format_lsn(xlogpos), std::nullopt}},
                           "IDENTIFY_SYSTEM");
}

void timeline_history(PgConnection& conn, const ReplicationContext& ctx, std::uint32_t tli) {
    TimelineSnapshot snap;
    auto tl = serving_timeline(conn, ctx, snap);
    if (!tl) return;
    std::string content;
    if (tli > 1 && tli <= snap.pg_timeline) {
        std::lock_guard<std::mutex> g(tl->mutex());
        if (WalStorage* st = tl->storage()) content = st->control().pg_timeline_history;
    }
    std::optional<std::string> file;
    if (tli > 1 && tli == snap.pg_timeline && !content.empty()) file = content;
    if (tli > 1 && tli < snap.pg_timeline) file = history_prefix_for(content, tli);
    if (!file) {
        conn.send_error(sqlstate::kUndefinedFile,
                        "could not find timeline history file \"" + history_file_name(tli) +
                            "\" on this safekeeper (its PostgreSQL timeline is " +
                            std::to_string(snap.pg_timeline) + ")");
        return;
    }
    conn.send_typed_result({{"filename", kTextOid}, {"content", kByteaOid}},
                           {{history_file_name(tli), *file}}, "TIMELINE_HISTORY");
}

void read_replication_slot(PgConnection& conn, const ReplicationContext& ctx,
                           const std::string& slot) {
    TimelineSnapshot snap;
    auto tl = serving_timeline(conn, ctx, snap);
    if (!tl) return;
    std::optional<std::string> restart_lsn, restart_tli;
    if (auto persisted = tl->slots() ? tl->slots()->find(slot) : std::nullopt) {
        // A persisted slot: its restart LSN (NULL before it reserved WAL, or
        // once invalidated, as PostgreSQL does).
        if (persisted->restart_lsn != kInvalidLsn && !persisted->invalidated) {
            restart_lsn = format_lsn(persisted->restart_lsn);
            restart_tli = std::to_string(snap.pg_timeline);
        }
    } else if (auto flush = tl->consumers().slot_flush_lsn(slot)) {
        restart_lsn = format_lsn(*flush);
        restart_tli = std::to_string(snap.pg_timeline);
    }
    conn.send_typed_result(
        {{"slot_type", kTextOid}, {"restart_lsn", kTextOid}, {"restart_tli", kInt8Oid}},
        {{std::string("physical"), restart_lsn, restart_tli}}, "READ_REPLICATION_SLOT");
}

const char* slot_error_sqlstate(SlotError why, const Status& s) {
    switch (why) {
        case SlotError::kExists: return sqlstate::kDuplicateObject;
        case SlotError::kNotFound: return sqlstate::kUndefinedObject;
        case SlotError::kTooMany: return sqlstate::kConfigurationLimitExceeded;
        case SlotError::kBadName: return sqlstate::kInvalidName;
        case SlotError::kNone:
        case SlotError::kIo: break;
    }
    return is_out_of_space(s) ? sqlstate::kDiskFull : sqlstate::kIoError;
}

void create_replication_slot(PgConnection& conn, const ReplicationContext& ctx,
                             const ReplicationCommand& cmd) {
    if (cmd.temporary) {
        conn.send_error(sqlstate::kFeatureNotSupported,
                        "temporary replication slots are not supported by the safekeeper");
        return;
    }
    TimelineSnapshot snap;
    auto tl = serving_timeline(conn, ctx, snap);
    if (!tl || !tl->slots()) return;
    Lsn restart = kInvalidLsn;
    if (cmd.reserve_wal) {
        // The segment holding the commit position: a consumer starts at a
        // segment boundary.
        restart = snap.commit_lsn - snap.commit_lsn % snap.wal_segment_size;
        restart = std::max(restart, snap.timeline_start_lsn);
    }
    SlotError why = SlotError::kNone;
    Status s = tl->slots()->create(cmd.slot_name, restart, why);
    if (!s.ok()) {
        conn.send_error(slot_error_sqlstate(why, s), s.message());
        return;
    }
    spdlog::info("timeline {}: replication slot \"{}\" created{}", tl->name(), cmd.slot_name,
                 restart ? ", reserving WAL from " + format_lsn(restart) : "");
    // As a walsender answers a physical slot: no consistent point, snapshot
    // or plugin.
    conn.send_typed_result({{"slot_name", kTextOid},
                            {"consistent_point", kTextOid},
                            {"snapshot_name", kTextOid},
                            {"output_plugin", kTextOid}},
                           {{cmd.slot_name, std::string("0/0"), std::nullopt, std::nullopt}},
                           "CREATE_REPLICATION_SLOT");
}

void drop_replication_slot(PgConnection& conn, const ReplicationContext& ctx,
                           const ReplicationCommand& cmd) {
    Resolved r = resolve_timeline(ctx);
    if (!r.timeline || !r.timeline->slots()) {
        conn.send_error(r.sqlstate, r.timeline ? "timeline " + r.timeline->name() + " is broken"
                                               : r.error);
        return;
    }
    // WAIT has nothing to wait for: a consumer on the slot does not lock it.
    SlotError why = SlotError::kNone;
    Status s = r.timeline->slots()->drop(cmd.slot_name, why);
    if (!s.ok()) {
        conn.send_error(slot_error_sqlstate(why, s), s.message());
        return;
    }
    spdlog::info("timeline {}: replication slot \"{}\" dropped", r.timeline->name(),
                 cmd.slot_name);
    conn.send_command_complete("DROP_REPLICATION_SLOT");
}

void show(PgConnection& conn, const ReplicationContext& ctx, const std::string& name) {
    std::string value;
    if (name == "wal_segment_size") {
        std::uint32_t size = 16u << 20;  // PostgreSQL's default until a primary told us
        Resolved r = resolve_timeline(ctx);
        if (r.timeline) {
            const TimelineSnapshot snap = r.timeline->snapshot();
            if (snap.wal_segment_size) size = snap.wal_segment_size;
        }
        value = format_segment_size(size);
    } else if (name == "data_directory_mode") {
        value = "0700";
    } else if (name == "server_version") {
        value = "15.0";
    } else if (name == "server_version_num") {
        value = "150000";
    } else if (name == "integer_datetimes") {
        value = "on";
    } else if (name == "safekeeper_node_id") {
        // For peer recovery (recovery/peer_recovery.h): who answers here.
        value = std::to_string(ctx.registry->node_id());
    } else if (name == "safekeeper_http_address") {
        value = ctx.registry->http_address();
    } else {
        conn.send_error(sqlstate::kUndefinedObject,
                        "unrecognized configuration parameter \"" + name + "\"");
        return;
    }
    conn.send_typed_result({{name, kTextOid}}, {{value}}, "SHOW");
}

void start_replication(PgConnection& conn, const ReplicationContext& ctx,
                       const ReplicationCommand& cmd, ReplicationOutcome& outcome) {
    TimelineSnapshot snap;
    auto tl = serving_timeline(conn, ctx, snap);
    if (!tl) return;
    outcome = run_wal_sender(conn, ctx, std::move(tl), cmd, snap);
}

}  // namespace

std::optional<std::string> history_prefix_for(const std::string& content, std::uint32_t want_tli) {
    return pg_timeline_history_prefix(content, want_tli);
}

ReplicationOutcome handle_replication_query(PgConnection& conn, const ReplicationContext& ctx,
                                            const std::string& query) {
    ReplicationCommandParse parsed = parse_replication_command(query);
    if (!parsed.error.empty()) {
        conn.send_error(sqlstate::kSyntaxError, parsed.error);
        return ReplicationOutcome::kContinue;
    }
    const ReplicationCommand& cmd = parsed.command;
    ReplicationOutcome outcome = ReplicationOutcome::kContinue;
    switch (cmd.kind) {
        case ReplicationCommandKind::kNone:
            return ReplicationOutcome::kNotHandled;
        case ReplicationCommandKind::kIdentifySystem:
            identify_system(conn, ctx);
            break;
        case ReplicationCommandKind::kTimelineHistory:
            timeline_history(conn, ctx, cmd.timeline);
            break;
        case ReplicationCommandKind::kReadReplicationSlot:
            read_replication_slot(conn, ctx, cmd.slot_name);
            break;
        case ReplicationCommandKind::kCreateReplicationSlot:
            create_replication_slot(conn, ctx, cmd);
            break;
        case ReplicationCommandKind::kDropReplicationSlot:
            drop_replication_slot(conn, ctx, cmd);
            break;
        case ReplicationCommandKind::kShow:
            show(conn, ctx, cmd.show_name);
            break;
        case ReplicationCommandKind::kStartReplication:
            start_replication(conn, ctx, cmd, outcome);
            break;
    }
    return outcome;
}

}  // namespace wp::sk
