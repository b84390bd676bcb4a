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

#include "timeline/timeline.h"

namespace httplib {
class Server;
}

namespace wp::sk {

// The body of POST .../pull_timeline: {"source": "http[s]://HOST:PORT",
// "max_bytes_per_second": N (0: no limit), "timeout_seconds": N (> 0)}.
struct PullRequestBody {
    std::string source;
    std::uint64_t max_bytes_per_second = 0;
    std::uint64_t timeout_seconds = 30;
};
// kInvalidInput with the message the client gets (400).
Result<PullRequestBody> parse_pull_request_body(const std::string& body);

// The parameters of GET .../wal, each as given (nullopt: missing).
struct WalReadParams {
    Lsn start = 0, end = 0, flush = 0;
    Term wal_term = 0;
};
Result<WalReadParams> parse_wal_read_params(const std::optional<std::string>& start,
                                            const std::optional<std::string>& end,
                                            const std::optional<std::string>& flush,
                                            const std::optional<std::string>& wal_term);

// `stopping` is set at shutdown: a running pull then stops and cleans up.
// `peer_credentials` (must outlive the server): what this daemon presents
// to the source of a pull.
void register_pull_timeline_routes(httplib::Server& server, TimelineRegistry& registry,
                                   NodeId node_id, const std::atomic<bool>& stopping,
                                   const ClientCredentials& peer_credentials);

}  // namespace wp::sk
