// One non-blocking libpq connection from the walproposer worker to a
// safekeeper, carrying the proposer protocol inside CopyBoth.
//
// Life cycle (states):
//   kClosed --start(), numeric address--> kConnecting
//   kClosed --start(), host name--> kResolving --advance(), resolved--> kConnecting
//   kConnecting --PQconnectPoll ok--> kStartingPush
//   kStartingPush --COPY_BOTH result--> kStreaming
//   any --error / close()--> kClosed
// The worker waits on socket() for the events wanted_events() names and
// calls on_ready(), and calls advance() on every loop pass (a connection
// that is resolving has no socket yet); nothing here blocks: a host name is
// resolved on another thread (name_resolver.h) and libpq is then given its
// numeric addresses as "hostaddr", with the name as "host" (for TLS
// verification and the password file). libpq never raises PostgreSQL
// errors, so these calls are safe anywhere. Owned by the worker's driver;
// single-threaded.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "name_resolver.h"
#include "walproposer/result.h"

typedef struct pg_conn PGconn;

namespace wp::pg {

// libpq keyword/value pairs, in order.
using ConninfoPairs = std::vector<std::pair<std::string, std::string>>;

// Where and as what a push connection goes: one safekeeper, one timeline.
struct PushTarget {
    std::string host;
    std::uint16_t port = 0;
    std::string application_name;
    std::string tenant_hex;
    std::string timeline_hex;
    std::string extra_options;  // appended to the startup options ("-c k=v ...")
    // libpq keywords from walproposer.safekeeper_conninfo (pg_walproposer_sync
    // --conninfo), as parse_safekeeper_conninfo returns them; each replaces
    // the default for that keyword (user, sslmode, ...).
    ConninfoPairs extra_conninfo;
};

// Parses walproposer.safekeeper_conninfo (libpq's keyword=value form, the
// keywords libpq knows) into the keywords it sets, in libpq's keyword order.
// Refused, since the proposer sets them itself: host, hostaddr, port (each
// safekeeper's address), dbname, options (the tenant and timeline ids),
// replication; and an sslmode libpq would refuse at every connection. A blank
// text sets nothing. Pure (libpq's parser only; it reads no file and no
// environment); never raises PostgreSQL errors.
wp::Result<ConninfoPairs> parse_safekeeper_conninfo(const std::string& text);

// The libpq keywords and values of a push connection to `target`: host,
// port, dbname=postgres and the startup options (tenant and timeline ids,
// then target.extra_options) from the proposer; user=walproposer,
// application_name, TCP keepalives (idle 10 s, interval 5 s, 3 probes) and
// sslmode=prefer as defaults, each replaced by the value target.extra_conninfo
// gives for it; then extra_conninfo's other keywords in its order (those
// parse_safekeeper_conninfo refuses are skipped: the proposer's own win). An empty
// value there leaves the keyword to libpq's own default (environment
// variables such as PGUSER, then built-in). Pure.
ConninfoPairs push_conninfo(const PushTarget& target);

class SafekeeperConnection {
public:
    enum class State { kClosed, kResolving, kConnecting, kStartingPush, kStreaming };

    SafekeeperConnection() = default;
    ~SafekeeperConnection();
    SafekeeperConnection(const SafekeeperConnection&) = delete;
    SafekeeperConnection& operator=(const SafekeeperConnection&) = delete;

    // Begins connecting with libpq keywords/values (already complete).
    // When they name a "host" that is not a numeric address and no
    // "hostaddr", the connection first resolves it (kResolving); `wake`, if
    // not null, is called from the resolving thread when the answer is in
    // (see resolve_host_async).
    wp::Status start(const std::vector<std::string>& keywords,
                     const std::vector<std::string>& values, void (*wake)() = nullptr);
    // Begins connecting to `target`, for START_WAL_PUSH on its timeline,
    // with push_conninfo(target).
    wp::Status start(const PushTarget& target, void (*wake)() = nullptr);
    // Moves a resolving connection on once its host name is resolved (to
    // kConnecting, or to kClosed with the resolver's error); otherwise does
    // nothing. Never blocks.
    wp::Status advance();
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

    // Queues one CopyData message (taking it over) and sends what the socket
    // takes now; the rest is sent as the socket becomes writable, in order.
    // Messages wait in this connection's own queue and are handed to libpq
    // one at a time, when its buffer is empty: libpq moves what it could
    // not send to the front of its buffer after every partial send, so
    // megabytes queued there would be copied again and again. What waits is
    // bounded by the proposer's in-flight limit per safekeeper.
    wp::Status send(std::vector<std::uint8_t>&& payload);

private:
    wp::Status fail(const std::string& what);
    wp::Status flush_output();
    wp::Status read_copy_data(std::vector<std::vector<std::uint8_t>>& inbox);

    wp::Status connect_now(const std::vector<std::string>& keywords,
                           const std::vector<std::string>& values);

    PGconn* conn_ = nullptr;
    // While kResolving: the lookup, and the keywords/values to connect with.
    std::shared_ptr<NameLookup> lookup_;
    std::vector<std::string> pending_keywords_;
    std::vector<std::string> pending_values_;
    State state_ = State::kClosed;
    bool connect_wants_write_ = false;
    // Something is left to send: in libpq's buffer or in send_queue_.
    bool output_pending_ = false;
    // Messages not yet handed to libpq (kStreaming only), oldest first.
    std::deque<std::vector<std::uint8_t>> send_queue_;
};

}  // namespace wp::pg
