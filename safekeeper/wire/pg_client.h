// A small blocking client of the PostgreSQL v3 protocol, for a safekeeper
// talking to a peer safekeeper's PostgreSQL-protocol port (peer recovery:
// recovery/peer_recovery.h). It speaks only what that needs: TLS (asked
// for first; required and verified against credentials.sslrootcert and the
// host name when that is set, else used when the peer offers it), a startup
// packet, trust or SCRAM-SHA-256 authentication (the server's signature is
// checked), simple queries whose rows come back as text, and nothing else.
//
// Every socket operation is bounded by the timeout given to connect(): a
// peer that hangs (or is partitioned away) fails the call, it never blocks
// the caller forever. Errors are values naming the peer.
// Not thread-safe; one owner. The socket is closed by close() or the
// destructor.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "auth/client_credentials.h"
#include "walproposer/result.h"
#include "wire/tls.h"

namespace wp::sk {

class PgClient {
public:
    PgClient() = default;
    ~PgClient();
    PgClient(const PgClient&) = delete;
    PgClient& operator=(const PgClient&) = delete;

    // Connects to host:port and completes the startup (up to ReadyForQuery).
    // `params` are startup parameters; the user is credentials.user, else
    // "safekeeper". A server that asks for a password when none is given
    // fails the call with a message saying so.
    Status connect(const std::string& host, std::uint16_t port,
                   const std::map<std::string, std::string>& params,
                   std::chrono::milliseconds timeout, const ClientCredentials& credentials = {});
    using Row = std::vector<std::optional<std::string>>;
    // Runs one simple query and returns its rows (text values, NULL as
    // nullopt). An ErrorResponse becomes an error with its SQLSTATE and text.
    Result<std::vector<Row>> query(const std::string& sql);
    // query() for a command that returns one row with one non-NULL value.
    Result<std::string> query_value(const std::string& sql);
    void close();
    const std::string& peer() const { return peer_; }

private:
    Status send_all(const std::string& bytes);
    Status read_exact(char* buf, std::size_t n);
    Status read_message(char& type, std::string& payload);
    Status error(const std::string& what) const;

    Status start_tls(const std::string& host, const ClientCredentials& credentials);

    int fd_ = -1;
    SSL* ssl_ = nullptr;
    std::shared_ptr<TlsClientConfig> tls_;
    std::string peer_;
};

// "SQLSTATE text" out of an ErrorResponse payload.
std::string pg_error_text(const std::string& payload);

// A protocol 3.0 StartupMessage with `params` (length prefix included).
std::string encode_startup_packet(const std::map<std::string, std::string>& params);

}  // namespace wp::sk
