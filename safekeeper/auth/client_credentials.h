// The credentials (and TLS trust) the daemon itself uses towards other safekeepers (peer
// recovery's PostgreSQL-protocol and HTTP requests, pull_timeline's reads of
// the source) and that the `safekeeper pull-timeline` command presents.
//
// Contract: plain values. A password file holds the password on its first
// line (a trailing newline is not part of it); read_password_file refuses a
// file that is empty and names the file in every error.
#pragma once

#include <string>

#include "walproposer/result.h"

namespace wp::sk {

struct ClientCredentials {
    std::string user;      // "" = present none (the peer must trust us)
    std::string password;
    // TLS towards the peer (HTTPS, and TLS on its PostgreSQL port when it
    // offers it): the CA file its certificate must chain to, checked with
    // its host name as libpq's sslmode=verify-full does; "" encrypts
    // without verifying (sslmode=require).
    std::string sslrootcert;

    bool empty() const { return user.empty(); }
};

Result<std::string> read_password_file(const std::string& path);

}  // namespace wp::sk
