// The HTTP client side of pull_timeline: a SnapshotSource (pull.h) that
// reads a peer safekeeper's snapshot endpoints (docs/http-api.md:
// GET .../snapshot and GET .../wal), and the client call of the destination's
// POST .../pull_timeline used by the `safekeeper pull-timeline` command.
//
// Addresses: see HttpAddress; https:// verifies the server against
// ClientCredentials::sslrootcert. Errors are values naming the address, the
// request and the HTTP status or connection error, and the peer's own
// {"error": ...} text when it sent one.
// Thread-safety: one HttpSnapshotSource per pull (httplib's client is not
// thread-safe).
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "auth/client_credentials.h"
#include "pull_timeline/pull.h"
#include "walproposer/result.h"

namespace httplib {
class Client;
}

namespace wp::sk {

// An HTTP API address: "http://HOST:PORT", "https://HOST:PORT" or "HOST:PORT"
// (plain HTTP); IPv6 hosts in brackets.
struct HttpAddress {
    bool https = false;
    std::string host;  // without brackets
    std::uint16_t port = 0;
    std::string url() const;  // scheme://host:port
};
// kInvalidInput for anything else.
Result<HttpAddress> parse_http_address(const std::string& address);

class HttpSnapshotSource final : public SnapshotSource {
  public:
    // `timeout`: for connecting and for each request's reads and writes.
    // `credentials`: HTTP Basic credentials for every request (none if empty).
    static Result<std::unique_ptr<HttpSnapshotSource>> create(
        const std::string& address, std::chrono::seconds timeout,
        const ClientCredentials& credentials = {});
    ~HttpSnapshotSource() override;

    std::string describe() const override { return address_; }
    Result<PullSnapshot> fetch_snapshot(const Id128& tenant, const Id128& timeline) override;
    Status read_wal(const PullSnapshot& snapshot, Lsn start, Lsn end, std::string& out) override;

  private:
    HttpSnapshotSource(std::string address, std::unique_ptr<httplib::Client> client);
    std::string address_;
    std::unique_ptr<httplib::Client> client_;
};

// The outcome of asking a destination to pull (POST .../pull_timeline).
struct PullRequestResult {
    int http_status = 0;  // 0: no HTTP answer (connection error)
    std::string body;     // the JSON answer
    std::string error;    // the error to print, empty on success
};
// Asks the safekeeper at `destination` to pull the timeline from `source`.
// Waits for the whole pull (up to `timeout`).
PullRequestResult request_pull(const std::string& destination, const std::string& source,
                               const Id128& tenant, const Id128& timeline,
                               std::uint64_t max_bytes_per_second, std::chrono::seconds timeout,
                               const ClientCredentials& credentials = {});

}  // namespace wp::sk
