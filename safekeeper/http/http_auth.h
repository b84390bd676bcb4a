// Who may call what on the HTTP API (docs/http-api.md, "Authentication").
//
// Every request carries HTTP Basic credentials of a role of the roles file
// (auth/roles.h), checked against its SCRAM secret, unless the daemon runs
// with --auth trust. What a request needs:
//   GET /v1/status, GET /metrics                 any role (or nobody, with
//                                                --http-open-status)
//   GET /v1/timelines                            any role (it lists only the
//                                                tenants the role may read)
//   GET  /v1/tenant/T/timeline/L[/...]           read on tenant T
//   other methods on /v1/tenant/T/...            admin on tenant T
//   anything else                                GET: any role; others: admin
// A missing or wrong credential gets 401 with a WWW-Authenticate challenge;
// a role without the permission gets 403. Pure functions; thread-safe.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "auth/roles.h"
#include "walproposer/result.h"

namespace wp::sk {

struct HttpAccessRule {
    unsigned permission = 0;        // Permission bits needed (0: any role)
    std::optional<Id128> tenant;    // the tenant the request touches
    bool monitoring = false;        // may be opened with --http-open-status
};

HttpAccessRule http_access_rule(std::string_view method, std::string_view path);

// "Basic <base64 of user:password>" -> (user, password).
Result<std::pair<std::string, std::string>> parse_basic_authorization(std::string_view header);

// The Authorization header value for (user, password).
std::string basic_authorization(const std::string& user, const std::string& password);

}  // namespace wp::sk
