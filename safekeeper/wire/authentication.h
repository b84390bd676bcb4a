// Authentication of a PostgreSQL-protocol client, between its startup
// packet and AuthenticationOk: nothing under --auth trust, else a
// SCRAM-SHA-256 exchange (SASL messages of the v3 protocol) against the
// role named by the startup packet's `user`.
//
// Contract: on success returns what the client may do; the caller then sends
// AuthenticationOk. On failure the client has already been sent a FATAL
// (28P01 for a wrong password or an unknown role, which look the same to the
// client; 08P01 for a malformed exchange; 28000 for a missing user name),
// the reason is logged, and the caller closes the connection. A client that
// hangs up during the exchange gets nothing. Runs on the connection's thread.
#pragma once

#include <string>

#include "auth/roles.h"
#include "walproposer/result.h"
#include "wire/pg_wire.h"

namespace wp::sk {

Result<Principal> authenticate_pg_client(PgConnection& conn, Authenticator& authenticator,
                                         const std::string& user);

}  // namespace wp::sk
