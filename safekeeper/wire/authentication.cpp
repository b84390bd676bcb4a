#include "wire/authentication.h"

#include <spdlog/spdlog.h>

#include <cstring>

#include "walproposer/byte_order.h"

namespace wp::sk {
namespace {

Status refuse(PgConnection& conn, const char* sqlstate, const std::string& message,
              const std::string& log_reason) {
    conn.send_error(sqlstate, message, "FATAL");
    (void)conn.flush();  // the connection ends either way
    spdlog::warn("connection from {}: {}", conn.peer(), log_reason);
    return Status::error(StatusKind::kInvalidInput, log_reason);
}

// The next 'p' (SASLInitialResponse / SASLResponse) message's payload.
Result<std::string> read_sasl_message(PgConnection& conn) {
    auto msg = conn.read_message();
    if (!msg) {
        if (msg.status().kind() == StatusKind::kInvalidInput)
            return refuse(conn, sqlstate::kProtocolViolation, msg.status().message(),
                          msg.status().message());
        return msg.status();  // hung up (e.g. libpq without a password)
    }
    if (msg->type != 'p')
        return refuse(conn, sqlstate::kProtocolViolation,
                      std::string("expected a SASL response, got message type '") + msg->type +
                          "'",
                      "sent another message instead of authenticating");
    return std::move(msg->payload);
}

}  // namespace

Result<Principal> authenticate_pg_client(PgConnection& conn, Authenticator& authenticator,
                                         const std::string& user) {
    if (authenticator.mode() == AuthMode::kTrust) return trusted_principal();
    if (user.empty())
        return refuse(conn, sqlstate::kInvalidAuthorization, "no user name in the startup packet",
                      "no user name in the startup packet");
    const std::string failed = "password authentication failed for user \"" + user + "\"";
    std::shared_ptr<const Role> role = authenticator.find(user);
    ScramServerExchange exchange(role ? std::optional<ScramSecret>(role->secret) : std::nullopt,
                                 user, authenticator.mock_key());

    // An unauthenticated client may not make the daemon buffer large messages.
    conn.set_max_message_bytes(kMaxAuthMessageBytes);
    conn.send_auth_sasl({kScramMechanism});
    WP_RETURN_IF_ERROR(conn.flush());

    // SASLInitialResponse: mechanism\0, int32 length (-1: none), data.
    auto initial = read_sasl_message(conn);
    if (!initial) return initial.status();
    const void* nul = std::memchr(initial->data(), '\0', initial->size());
    if (nul == nullptr)
        return refuse(conn, sqlstate::kProtocolViolation, "malformed SASLInitialResponse",
                      "malformed SASLInitialResponse");
    const std::size_t mech_len = static_cast<const char*>(nul) - initial->data();
    const std::string mechanism = initial->substr(0, mech_len);
    if (mechanism != kScramMechanism)
        return refuse(conn, sqlstate::kProtocolViolation,
                      "SASL mechanism \"" + mechanism + "\" is not offered (only " +
                          kScramMechanism + ")",
                      "asked for SASL mechanism \"" + mechanism + "\"");
    if (initial->size() < mech_len + 1 + 4)
        return refuse(conn, sqlstate::kProtocolViolation, "malformed SASLInitialResponse",
                      "malformed SASLInitialResponse");
    const std::int32_t data_len =
        static_cast<std::int32_t>(get_be32(initial->data() + mech_len + 1));
    const std::size_t data_at = mech_len + 1 + 4;
    if (data_len < 0 || static_cast<std::size_t>(data_len) != initial->size() - data_at)
        return refuse(conn, sqlstate::kProtocolViolation, "malformed SASLInitialResponse",
                      "malformed SASLInitialResponse (bad data length)");
    auto server_first = exchange.server_first(std::string_view(*initial).substr(data_at));
    if (!server_first)
        return refuse(conn, sqlstate::kProtocolViolation, server_first.status().message(),
                      server_first.status().message());
    conn.send_auth_sasl_data(11, *server_first);
    WP_RETURN_IF_ERROR(conn.flush());

    auto client_final = read_sasl_message(conn);
    if (!client_final) return client_final.status();
    auto server_final = exchange.server_final(*client_final);
    if (!server_final) {
        const Status& s = server_final.status();
        if (s.kind() == StatusKind::kInvalidInput)
            return refuse(conn, sqlstate::kProtocolViolation, s.message(), s.message());
        return refuse(conn, sqlstate::kInvalidPassword, failed, failed + ": " + s.message());
    }
    conn.send_auth_sasl_data(12, *server_final);
    conn.set_max_message_bytes(kMaxMessageBytes);
    Principal principal = principal_of(*role);
    spdlog::debug("connection from {} authenticated as {} ({})", conn.peer(), principal.describe(),
                  describe_permissions(principal.permissions));
    return principal;
}

}  // namespace wp::sk
