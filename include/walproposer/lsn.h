// LSN (PostgreSQL XLogRecPtr) and term types shared by the proposer, the
// acceptor and the safekeeper daemon.
//
// Contract: pure value types and functions; no allocation except the
// returned string; thread-safe; no PostgreSQL header needed.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace wp {

// A byte position in the WAL stream, as PostgreSQL's XLogRecPtr.
using Lsn = std::uint64_t;
// A consensus term (election number); 0 means "never voted".
using Term = std::uint64_t;

constexpr Lsn kInvalidLsn = 0;

// Formats an LSN the way PostgreSQL prints it: upper and lower 32 bits in
// upper-case hex without leading zeros, separated by '/', e.g. "0/16B3748".
std::string format_lsn(Lsn lsn);

// Parses "X/Y" where X and Y are 1-8 hex digits (either case). Returns
// nullopt for anything else: empty parts, more than 8 digits, signs,
// spaces, trailing characters, a missing '/'.
std::optional<Lsn> parse_lsn(std::string_view text);

}  // namespace wp
