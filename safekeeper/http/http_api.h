// Operator HTTP API (cpp-httplib), documented in docs/http-api.md:
//   GET    /v1/status
//   GET    /v1/timelines   (those of tenants the caller may read)
//   GET    /v1/tenant/{tenant}/timeline/{timeline}
//   DELETE /v1/tenant/{tenant}/timeline/{timeline}
//   GET    /metrics   (Prometheus text format)
//   GET .../snapshot, GET .../wal, POST .../pull_timeline (pull_timeline/http_routes.h)
// Every request is authenticated first (http/http_auth.h).
// Reads only published timeline snapshots and atomics, so it never waits
// for a timeline's disk IO (DELETE waits for the timeline's in-flight batch).
// Thread-safety: httplib serves requests on its own thread pool; all
// handlers are thread-safe. Lifetime: registry and server must outlive it.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>

#include "auth/client_credentials.h"
#include "auth/roles.h"
#include "wire/server.h"
#include "wire/tls.h"
#include "walproposer/result.h"
#include "timeline/timeline.h"

namespace httplib {
class Server;
struct Request;
struct Response;
}

namespace wp::sk {

// Largest HTTP request body accepted (413 beyond it).
constexpr std::size_t kMaxHttpBodyBytes = 64 * 1024;


struct HttpApiOptions {
    bool open_status = false;            // GET /v1/status and /metrics need no credential
    ClientCredentials peer_credentials;  // presented to the source of a pull
    const TlsServerConfig* tls = nullptr;  // HTTPS when set (must outlive the API)
};

class HttpApi {
public:
    // `authenticator` must outlive the API.
    HttpApi(TimelineRegistry& registry, PgServer& pg_server, NodeId node_id,
            Authenticator& authenticator, HttpApiOptions options = {});
    ~HttpApi();

    // Binds (error value if the address is in use); start() serves in a thread.
    Status listen(const std::string& host, std::uint16_t port);
    std::uint16_t bound_port() const { return bound_port_; }
    void start();
    void stop();

    // Exposed for tests.
    std::string render_metrics();

private:
    // The pre-routing check: false = refused (401/403 already in `res`).
    bool authorize(const httplib::Request& req, httplib::Response& res);
    // Who made an (authorized) request: its role, or everything under trust.
    Principal request_principal(const httplib::Request& req);

    TimelineRegistry& registry_;
    PgServer& pg_server_;
    NodeId node_id_;
    Authenticator& authenticator_;
    HttpApiOptions options_;
    std::unique_ptr<httplib::Server> server_;
    std::thread thread_;
    std::uint16_t bound_port_ = 0;
    std::atomic<bool> stopping_{false};  // set by stop(); seen by running pulls
};

}  // namespace wp::sk
