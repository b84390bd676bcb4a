// One non-blocking libpq connection from the walproposer worker to a
// safekeeper, carrying the proposer protocol inside CopyBoth.
//
// Life cycle (states):
//   kClosed --start()--> kConnecting --PQconnectPoll ok--> kStartingPush
//   kStartingPush --COPY_BOTH result--> kStreaming
//   any --error / close()--> kClosed
// The worker waits on socket() for the events wanted_events() names and
// calls on_ready(); nothing here blocks. libpq never raises PostgreSQL
// errors, so these calls are safe anywhere. Owned by the worker's driver;
// single-threaded.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "walproposer/result.h"

typedef struct pg_conn PGconn;

namespace wp::pg {

// Where and as what a push connection goes: one safekeeper, one timeline.
struct PushTarget {
    std::string host;
    std::uint16_t port = 0;
    std::string application_name;
    std::string tenant_hex;
    std::string timeline_hex;
    std::string extra_options;  // appended to the startup options ("-c k=v ...")
    // libpq keywords from walproposer.safekeeper_conninfo; each replaces the
    // worker's default for that keyword (user, sslmode, ...).
    std::vector<std::pair<std::string, std::string>> extra_conninfo;
};

using ConninfoPairs = std::vector<std::pair<std::string, std::string>>;

// Parses walproposer.safekeeper_conninfo (libpq's keyword=value form, the
// keywords libpq knows) into the keywords it sets. Refused, since the worker
// sets them itself: host, hostaddr, port, dbname, options, replication.
// Pure (libpq's parser only); never throws PostgreSQL errors.
wp::Result<ConninfoPairs> parse_safekeeper_conninfo(const std::string& text);

class SafekeeperConnection {
public:
    enum class State { kClosed, kConnecting, kStartingPush, kStreaming };

    SafekeeperConnection() = default;
    ~SafekeeperConnection();
    SafekeeperConnection(const SafekeeperConnection&) = delete;
    SafekeeperConnection& operator=(const SafekeeperConnection&) = delete;

    // Begins connecting with libpq keywords/values (already complete).
    wp::Status start(const std::vector<std::string>& keywords,
                     const std::vector<std::string>& values);
    // Begins connecting to `target`, for START_WAL_PUSH on its timeline:
    // user walproposer, TCP keepalives on, sslmode prefer, unless
    // target.extra_conninfo says otherwise.
    wp::Status start(const PushTarget& target);
    void close();

    State state() const { return state_; }
    int socket() const;
    // WL_SOCKET_READABLE / WL_SOCKET_WRITEABLE bits for the wait set.
    int wanted_events() const;

    // Progresses after the socket became ready. Appends every complete
    // CopyData payload received to `inbox`. Sets `became_streaming` when
    // the CopyBoth stream has just been established. An error means the
    // connection is closed and unusable.
    wp::Status on_ready(std::vector<std::vector<std::uint8_t>>& inbox, bool& became_streaming);

    // Queues one CopyData message and tries to send it; the rest is sent as
    // the socket becomes writable.
    wp::Status send(const std::vector<std::uint8_t>& payload);

private:
    wp::Status fail(const std::string& what);
    wp::Status flush_output();
    wp::Status read_copy_data(std::vector<std::vector<std::uint8_t>>& inbox);

    PGconn* conn_ = nullptr;
    State state_ = State::kClosed;
    bool connect_wants_write_ = false;
    bool output_pending_ = false;
};

}  // namespace wp::pg
