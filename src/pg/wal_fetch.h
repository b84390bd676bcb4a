// A blocking libpq replication connection to one safekeeper that fetches
// committed WAL and timeline history files: the client side of
// pg_walproposer_restore (docs/replication.md, "Restoring WAL from the
// safekeepers").
//
// Contract: every call blocks at most until the deadline given at
// construction (libpq's connect_timeout bounds the connect). libpq only, no
// server header: safe in command-line tools. Single-threaded; the object owns
// its PGconn and closes it when destroyed.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "safekeeper_conn.h"
#include "walproposer/config.h"
#include "walproposer/lsn.h"

typedef struct pg_result PGresult;

namespace wp::pg {

// Which timeline and as what.
struct WalFetchTarget {
    std::string tenant_hex;
    std::string timeline_hex;
    std::string application_name;
    int connect_timeout_seconds = 3;
    ConninfoPairs extra_conninfo;  // from parse_safekeeper_conninfo
};

class WalFetchConnection {
public:
    using Clock = std::chrono::steady_clock;

    WalFetchConnection(const SafekeeperAddress& address, WalFetchTarget target, Clock::time_point deadline);
    ~WalFetchConnection();
    WalFetchConnection(const WalFetchConnection&) = delete;
    WalFetchConnection& operator=(const WalFetchConnection&) = delete;

    std::string name() const { return address_.to_string(); }
    // Why the last call failed ("" after success).
    const std::string& error() const { return error_; }
    // The last failure was the safekeeper saying it does not have what was
    // asked (unknown timeline, not written yet, not in its history, removed).
    bool not_there() const { return not_there_; }

    // Connects with replication=true; false with error() on failure.
    bool connect();
    // IDENTIFY_SYSTEM and SHOW wal_segment_size; fills the accessors below.
    bool identify();
    std::uint32_t pg_timeline() const { return pg_timeline_; }
    Lsn commit_lsn() const { return commit_lsn_; }
    std::uint32_t segment_size() const { return segment_size_; }

    // TIMELINE_HISTORY tli: the file's content.
    std::optional<std::string> timeline_history(std::uint32_t tli);

    // Streams [start, start + buffer.size()) of PostgreSQL timeline `tli` into
    // `buffer` (START_REPLICATION PHYSICAL), stopping at the end of the
    // buffer, at the commit LSN the safekeeper reports (the walEnd of its
    // messages), where the timeline ends (CopyDone), or at the deadline.
    // Returns the end of the contiguous WAL received (== start: none).
    Lsn fetch(std::uint32_t tli, Lsn start, std::vector<char>& buffer);

private:
    bool wait_readable();
    std::string libpq_error() const;
    void set_result_error(const char* what, const PGresult* res);

    SafekeeperAddress address_;
    WalFetchTarget target_;
    Clock::time_point deadline_;
    PGconn* conn_ = nullptr;
    std::string error_;
    bool not_there_ = false;
    std::uint32_t pg_timeline_ = 0;
    Lsn commit_lsn_ = 0;
    std::uint32_t segment_size_ = 0;
};

}  // namespace wp::pg
