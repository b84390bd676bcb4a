// Replication lag of the quorum, measured the way PostgreSQL's walsenders
// measure a standby's for pg_stat_replication (write_lag, flush_lag,
// replay_lag): the time from when WAL was flushed locally until the quorum
// confirmed it.
//
// The worker calls wal_flushed() when it sees the local flush LSN advance,
// and confirmed() when the quorum's commit LSN advances; confirmed() returns
// how long ago the newest WAL now confirmed was flushed. Samples are kept in
// a fixed ring (kCapacity); when it is full the newest sample is replaced,
// which only lowers the sampling rate.
//
// Contract: pure logic over the times given (microseconds, any epoch; no
// clock, no IO); single-threaded.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>

#include "walproposer/lsn.h"

namespace wp {

class CommitLagTracker {
public:
    static constexpr std::size_t kCapacity = 1024;

    // The local flush reached `lsn` at `now_us`. Ignored unless it is past
    // every sample kept.
    void wal_flushed(Lsn lsn, std::int64_t now_us);

    // The quorum confirmed WAL up to `commit_lsn` at `now_us`: forgets every
    // sample at or below it and returns now_us minus the time of the newest
    // of them; nothing when no sample was at or below it.
    std::optional<std::int64_t> confirmed(Lsn commit_lsn, std::int64_t now_us);

    // Samples waiting for confirmation.
    std::size_t pending() const { return count_; }

private:
    struct Sample {
        Lsn lsn = kInvalidLsn;
        std::int64_t time_us = 0;
    };
    std::array<Sample, kCapacity> ring_{};
    std::size_t head_ = 0;   // oldest sample
    std::size_t count_ = 0;
};

}  // namespace wp
