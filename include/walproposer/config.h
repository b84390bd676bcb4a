// Parsing and validation of the proposer's settings, shared by the
// extension's GUC check hooks and its tests (no PostgreSQL header).
//
// Contract: pure functions, thread-safe; errors are returned as a message
// that completes the sentence "invalid value: ..." for the user.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "walproposer/result.h"

namespace wp {

// Most safekeepers one proposer talks to.
constexpr std::size_t kMaxSafekeepers = 32;
// Longest host name accepted in walproposer.safekeepers.
constexpr std::size_t kMaxHostLength = 255;

struct SafekeeperAddress {
    std::string host;  // a name or an IPv4 address; IPv6 is written "[::1]" in the list
    std::uint16_t port = 0;

    // "host:port" as written in the list (IPv6 in brackets).
    std::string to_string() const;
    bool operator==(const SafekeeperAddress& other) const {
        return host == other.host && port == other.port;
    }
};

// Parses one "host:port" ("[ipv6]:port"); errors quote the entry.
Result<SafekeeperAddress> parse_safekeeper_address(std::string_view entry);

// Parses "host:port,host:port,..." (spaces around entries allowed). An empty
// or blank string is an empty list. Rejects a missing or bad port (1-65535),
// an empty or overlong host, duplicates, and more than kMaxSafekeepers.
Result<std::vector<SafekeeperAddress>> parse_safekeeper_list(std::string_view text);

// The default tenant/timeline id when the setting is empty: the system
// identifier as 32 lower-case hex digits, zero-padded on the left, so a
// promoted standby of the same cluster continues the same timeline.
std::string default_id_from_system_id(std::uint64_t system_id);

}  // namespace wp
