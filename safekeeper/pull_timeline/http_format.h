// The formats of pull_timeline's HTTP exchange (docs/http-api.md): the
// snapshot a source hands out (GET .../snapshot, JSON), the parameters of a
// WAL read (GET .../wal) and the body of a pull request (POST
// .../pull_timeline). Parsers of outside input: pure functions, no IO, no
// timeline (so the fuzz targets link them alone). Thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "walproposer/configuration.h"
#include "walproposer/lsn.h"
#include "walproposer/result.h"
#include "walproposer/timeline_key.h"

namespace wp::sk {

// One WAL segment file of a snapshot: bytes [start_lsn, end_lsn) of it are
// copied (start_lsn is the segment's start; end_lsn is the segment's end, or
// the snapshot's flush LSN for the last one).
struct SnapshotSegment {
    std::string
        file_name;  // as on the source: 24 hex digits, ".partial" for the last one if incomplete
    Lsn start_lsn = kInvalidLsn;
    Lsn end_lsn = kInvalidLsn;
};

struct PullSnapshot {
    Id128 tenant_id{};
    Id128 timeline_id{};
    NodeId source_node = 0;
    Lsn flush_lsn = kInvalidLsn;  // the source's flush LSN when the snapshot was taken
    Term wal_term = 0;            // term that wrote the WAL just below flush_lsn (0: no WAL)
    Lsn timeline_start_lsn = kInvalidLsn;   // first LSN of the timeline's WAL
    std::string control_file;               // encode_control_file() of the source's durable state
    std::vector<SnapshotSegment> segments;  // ascending, contiguous, ending at flush_lsn
};

// JSON form (docs/http-api.md, GET .../snapshot).
std::string snapshot_to_json(const PullSnapshot& s);
// Parses and checks the form (not the content: see pull.h). kInvalidInput.
Result<PullSnapshot> snapshot_from_json(const std::string& text);

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

}  // namespace wp::sk
