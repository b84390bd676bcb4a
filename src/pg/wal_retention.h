// How much WAL the primary keeps in pg_wal for the safekeepers, shared by
// the worker (which moves the replication slot) and the driver.
#pragma once

#include <cstdint>

namespace wp::pg {

// The proposer compares the last kWalVerifyWindowBytes below a safekeeper's
// flush LSN with its own pg_wal. A safekeeper's flush LSN is never below the
// proposer's truncate_lsn, so the slot keeps WAL from
// truncate_lsn - kWalVerifyWindowBytes on: that window is still readable.
constexpr std::uint64_t kWalVerifyWindowBytes = 8192;

}  // namespace wp::pg
