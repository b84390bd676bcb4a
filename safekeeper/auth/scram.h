// SCRAM-SHA-256 (RFC 5802, RFC 7677) as PostgreSQL speaks it: the stored
// secret, the server's side of the exchange on the PostgreSQL-protocol port,
// the client's side (the daemon's own connections to peers), and checking a
// cleartext password against a secret (HTTP Basic authentication).
//
// Secret text format (the one PostgreSQL stores in pg_authid.rolpassword, so
// a secret can be copied from either side):
//   SCRAM-SHA-256$<iterations>:<base64 salt>$<base64 StoredKey>:<base64 ServerKey>
//
// Contract: no channel binding (SCRAM-SHA-256 only, never -PLUS): a client's
// gs2 header must be "n,," or "y,,"; an authorization identity is refused.
// The user name inside the SCRAM messages is ignored: the role is the startup
// packet's `user`, as in PostgreSQL. Each exchange object serves one
// authentication, is used by one thread, and must be driven in order; a call
// out of order is an error. Nothing here throws.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "auth/scram_crypto.h"
#include "walproposer/result.h"

namespace wp::sk {

constexpr int kScramDefaultIterations = 4096;
constexpr const char kScramMechanism[] = "SCRAM-SHA-256";

struct ScramSecret {
    int iterations = kScramDefaultIterations;
    std::string salt;  // raw bytes
    Sha256Digest stored_key{};
    Sha256Digest server_key{};
};

Result<ScramSecret> parse_scram_secret(std::string_view text);
std::string format_scram_secret(const ScramSecret& secret);
// A new secret for `password` with a random 16-byte salt.
Result<ScramSecret> make_scram_secret(const std::string& password,
                                      int iterations = kScramDefaultIterations);
// Whether `password` is the one `secret` was made from (costs one PBKDF2 of
// `secret.iterations` rounds). Errors only for failures of the primitives.
Result<bool> scram_password_matches(const ScramSecret& secret, const std::string& password);

// The server's side. Failures of server_first/server_final have kind
// kInvalidInput for a malformed client message (a protocol violation) and
// kError for a failed authentication (wrong password, unknown role: the
// message says which, for the server's log only).
class ScramServerExchange {
public:
    // `secret` nullopt: the role does not exist; the exchange still runs to
    // its end with a salt derived from `mock_key` and the role name (so a
    // client cannot tell unknown roles from wrong passwords), then fails.
    ScramServerExchange(std::optional<ScramSecret> secret, std::string role_name,
                        std::string_view mock_key);

    // client-first-message -> server-first-message.
    Result<std::string> server_first(std::string_view client_first);
    // client-final-message -> server-final-message ("v=..."), only when the
    // proof is right.
    Result<std::string> server_final(std::string_view client_final);

private:
    std::optional<ScramSecret> secret_;
    ScramSecret mock_;
    std::string role_name_;
    std::string client_first_bare_;
    std::string server_first_;
    std::string nonce_;  // client nonce + server nonce
    std::string gs2_header_;
    int step_ = 0;
};

// The client's side: the password is known, the server proves it has the
// secret too (server_final is checked).
class ScramClientExchange {
public:
    explicit ScramClientExchange(std::string password);

    Result<std::string> client_first();
    Result<std::string> client_final(std::string_view server_first);
    Status check_server_final(std::string_view server_final);

private:
    std::string password_;
    std::string client_nonce_;
    std::string client_first_bare_;
    std::string expected_server_signature_;
    int step_ = 0;
};

}  // namespace wp::sk
