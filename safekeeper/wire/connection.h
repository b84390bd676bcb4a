// One client connection of the PostgreSQL-protocol port: startup,
// authentication (wire/authentication.h: SCRAM-SHA-256 against the roles
// file, or trust), then the simple-query command loop that
// dispatches replication-style commands to their handlers:
//   START_WAL_PUSH        -> push_handler (proposer stream)
//   IDENTIFY_SYSTEM, TIMELINE_HISTORY, START_REPLICATION, READ_REPLICATION_SLOT,
//   SHOW ...              -> send_wal/replication_commands (WAL to consumers)
// Everything else gets an ErrorResponse (0A000) and the session continues.
//
// The timeline is chosen at startup through the `options` parameter:
//   options='-c tenant_id=<32 hex> -c timeline_id=<32 hex>'
// (also accepted: "--tenant_id=<hex>" forms, and top-level startup
// parameters tenant_id / timeline_id / create_timeline).
// `-c create_timeline=false` (default true): START_WAL_PUSH on a timeline
// this safekeeper does not have fails instead of creating it (the sync
// proposer passes it). A value that is not a boolean (true/false, on/off,
// yes/no, 1/0, any case) is refused at startup with a FATAL 22023.
//
// Permissions (auth/roles.h): a tenant_id in the startup options must be one
// the role may touch (else FATAL 42501 at startup); START_WAL_PUSH needs
// `push`, every replication command but SHOW needs `read` (ERROR 42501, the
// session goes on).
//
// Thread-safety: serve_connection runs on the connection's own thread.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include "auth/roles.h"
#include "wire/pg_wire.h"
#include "timeline/timeline.h"

namespace wp::sk {

struct ConnectionContext {
    TimelineRegistry* registry = nullptr;
    Authenticator* authenticator = nullptr;
    std::uint64_t conn_id = 0;
    bool tls_required = false;  // refuse clients that did not ask for TLS
};

// Parses "-c key=value" / "--key=value" settings out of a startup `options`
// string. Unparseable text yields nullopt.
std::optional<std::map<std::string, std::string>> parse_startup_options(const std::string& options);

// PostgreSQL-style boolean: true/on/yes/1, false/off/no/0 (any case).
std::optional<bool> parse_bool_option(const std::string& text);

// Serves the connection until it ends. Never throws.
void serve_connection(PgConnection& conn, const ConnectionContext& ctx);

}  // namespace wp::sk
