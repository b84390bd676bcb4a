// The PostgreSQL-protocol listener: accepts TCP connections and serves each
// on its own thread (serve_connection). Why a thread per connection: the
// storage path is blocking file IO (pwrite, fdatasync) that an event loop
// would have to hand to threads anyway; a proposer connection's thread
// doing its own group commit keeps one timeline's slow fsync from touching
// any other timeline, and idle timelines cost no thread at all (only
// connected peers do). See docs/safekeeper.md.
//
// Contract: listen() binds (an address in use is an error value); start()
// runs the accept loop on a background thread; stop() closes the listener,
// shuts down every connection socket (threads finish their current batch
// and fsync, then exit) and waits for all connection threads.
// Thread-safe accessors for metrics.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <thread>

#include "wire/pg_wire.h"
#include "auth/roles.h"
#include "wire/tls.h"
#include "walproposer/result.h"
#include "timeline/timeline.h"

namespace wp::sk {

// "host:port" -> (host, port). Port 0 allowed (ephemeral).
Result<std::pair<std::string, std::uint16_t>> parse_host_port(const std::string& text);

class PgServer {
public:
    // `authenticator` must outlive the server.
    PgServer(TimelineRegistry& registry, Authenticator& authenticator,
             std::size_t max_connections = 1000, ConnectionLimits limits = {});
    ~PgServer();

    // TLS for SSLRequest (not owned; must outlive the server); with
    // `required`, a client that does not ask for TLS is refused.
    void set_tls(const TlsServerConfig* tls, bool required) {
        tls_ = tls;
        tls_required_ = required;
    }

    Status listen(const std::string& host, std::uint16_t port);
    std::uint16_t bound_port() const { return bound_port_; }
    void start();
    void stop();

    std::uint64_t active_connections() const { return active_.load(); }
    std::uint64_t total_connections() const { return total_.load(); }

private:
    void accept_loop();
    void run_connection(int fd, std::string peer, std::uint64_t id);

    TimelineRegistry& registry_;
    Authenticator& authenticator_;
    const TlsServerConfig* tls_ = nullptr;
    bool tls_required_ = false;
    std::size_t max_connections_;
    ConnectionLimits limits_;
    int listen_fd_ = -1;
    int wake_pipe_[2] = {-1, -1};
    std::uint16_t bound_port_ = 0;
    std::thread accept_thread_;
    std::atomic<bool> stopping_{false};
    std::atomic<std::uint64_t> active_{0};
    std::atomic<std::uint64_t> total_{0};
    std::uint64_t next_id_ = 1;

    std::mutex mutex_;
    std::condition_variable all_done_;
    std::map<std::uint64_t, PgConnection*> connections_;
};

}  // namespace wp::sk
