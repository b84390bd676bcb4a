// The WAL sender: serves a timeline's committed WAL to stock PostgreSQL
// consumers (standbys' walreceivers, pg_receivewal) over PostgreSQL's
// physical replication protocol. docs/replication.md describes what is
// supported and why.
//
// Commands (parsed by replication_command.h): IDENTIFY_SYSTEM,
// TIMELINE_HISTORY, START_REPLICATION, READ_REPLICATION_SLOT, SHOW.
//
// Which timeline: the tenant_id / timeline_id of the startup options; when
// none are given and the safekeeper holds exactly one timeline, that one.
//
// Streaming rules (START_REPLICATION):
//  * only WAL below the serving safekeeper's commit_lsn is ever sent;
//  * an XLogData message ends at a WAL page boundary (8 kB) unless it ends
//    at commit_lsn, carries at most 16 pages and never spans two segments,
//    so a consumer that starts at a segment start gets offset 0 first;
//  * when caught up the sender blocks in poll() on the socket and an
//    eventfd that the timeline writes when commit_lsn advances (no polling
//    loop); it sends a keepalive every 10 s of silence, answers a reply
//    request at once, and ends the stream after 60 s without any message
//    from the consumer (as wal_sender_timeout);
//  * 'r' standby status updates and 'h' hot-standby feedback are recorded in
//    the timeline's ConsumerSet; the lowest hot-standby xmin is handed to the
//    acceptor, which reports it to the proposer in AppendResponse.
//
// Thread-safety: runs on the connection's own thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "pg_wire.h"
#include "timeline.h"

namespace wp::sk {

struct ReplicationContext {
    TimelineRegistry* registry = nullptr;
    std::uint64_t conn_id = 0;
    std::optional<Id128> tenant_id, timeline_id;  // from the startup options
    std::string application_name;
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
// nullopt if that line is missing.
std::optional<std::string> history_prefix_for(const std::string& content, std::uint32_t want_tli);

}  // namespace wp::sk
