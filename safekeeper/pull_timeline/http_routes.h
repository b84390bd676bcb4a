// HTTP routes of pull_timeline (docs/http-api.md):
//   GET  /v1/tenant/{t}/timeline/{l}/snapshot        (source: take a snapshot)
//   GET  /v1/tenant/{t}/timeline/{l}/wal?start_lsn=&end_lsn=&flush_lsn=&wal_term=
//                                                    (source: the snapshot's WAL)
//   POST /v1/tenant/{t}/timeline/{l}/pull_timeline   (destination: pull it)
// Registered on the daemon's httplib server by HttpApi. The snapshot and WAL
// handlers hold the timeline's lock only for the snapshot and for each read
// (at most kMaxSnapshotWalChunk bytes); a pull blocks its HTTP worker thread
// until the copy is done. Lifetime: `registry` must outlive the server.
#pragma once

#include <atomic>
#include <cstdint>
#include <optional>
#include <string>

#include "auth/client_credentials.h"
#include "pull_timeline/http_format.h"

#include "timeline/timeline.h"

namespace httplib {
class Server;
}

namespace wp::sk {

// `stopping` is set at shutdown: a running pull then stops and cleans up.
// `peer_credentials` (must outlive the server): what this daemon presents
// to the source of a pull.
void register_pull_timeline_routes(httplib::Server& server, TimelineRegistry& registry,
                                   NodeId node_id, const std::atomic<bool>& stopping,
                                   const ClientCredentials& peer_credentials);

}  // namespace wp::sk
