// The replication commands: serves a timeline's committed WAL to stock
// PostgreSQL consumers (standbys' walreceivers, pg_receivewal) over
// PostgreSQL's physical replication protocol. docs/replication.md describes
// what is supported and why.
//
// Commands (parsed by wire/replication_command.h): IDENTIFY_SYSTEM,
// TIMELINE_HISTORY, START_REPLICATION, READ_REPLICATION_SLOT, SHOW.
// START_REPLICATION hands the connection to the WAL sender
// (send_wal/wal_sender.h), which holds the streaming rules.
//
// Which timeline: the tenant_id / timeline_id of the startup options; when
// none are given and the safekeeper holds exactly one timeline, that one.
//
// Thread-safety: runs on the connection's own thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "wire/pg_wire.h"
#include "timeline/timeline.h"

namespace wp::sk {

struct ReplicationContext {
    TimelineRegistry* registry = nullptr;
    std::uint64_t conn_id = 0;
    std::optional<Id128> tenant_id, timeline_id;  // from the startup options
    std::string application_name;
    std::string role;  // the authenticated role ("" under --auth trust)
};

enum class ReplicationOutcome {
    kNotHandled,  // not a replication command: the caller answers it
    kContinue,    // handled (result or ErrorResponse queued); send ReadyForQuery
    kClose,       // the connection is gone or must be closed
};

// Handles one simple query if it is a replication command.
ReplicationOutcome handle_replication_query(PgConnection& conn, const ReplicationContext& ctx,
                                            const std::string& query);

// Prefix of a PostgreSQL timeline history file (content of the file for
// `have_tli`) that is the history file of the earlier timeline `want_tli`
// (2 <= want_tli < have_tli): PostgreSQL writes a new history file as the
// parent's content plus one line, so it ends after the line of want_tli - 1.
// nullopt if that line is missing. (wp::pg_timeline_history_prefix, the
// parser in walproposer/pg_timeline_history.h.)
std::optional<std::string> history_prefix_for(const std::string& content, std::uint32_t want_tli);

}  // namespace wp::sk
