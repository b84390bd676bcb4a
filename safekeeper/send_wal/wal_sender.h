// The WAL sender: the START_REPLICATION stream of one consumer, after
// send_wal/replication_commands.h has resolved the timeline.
//
// Streaming rules:
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
//    acceptor, which reports it to the proposer in AppendResponse;
//  * on an earlier PostgreSQL timeline (or when a later one is elected while
//    streaming) the stream ends at the switch point read from the timeline's
//    history file, and the next timeline is named, as a walsender does.
//
// Thread-safety: runs on the connection's own thread.
#pragma once

#include <memory>

#include "send_wal/replication_commands.h"
#include "timeline/timeline.h"
#include "wire/pg_wire.h"
#include "wire/replication_command.h"

namespace wp::sk {

// Streams `tl` (active, identity known; `snap` taken by the caller) to the
// consumer on `conn` from cmd.start_lsn on cmd.timeline (0: the current one).
// An error the consumer should see is queued as an ErrorResponse and
// kContinue returned; kClose when the connection is gone or must be closed.
ReplicationOutcome run_wal_sender(PgConnection& conn, const ReplicationContext& ctx,
                                  std::shared_ptr<Timeline> tl, const ReplicationCommand& cmd,
                                  const TimelineSnapshot& snap);

}  // namespace wp::sk
