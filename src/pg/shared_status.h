// The worker's status in shared memory, read by walproposer_status() and
// walproposer_safekeepers() in any backend.
//
// Contract: one fixed-size struct, created in the postmaster by the
// shmem_startup hook. Only the walproposer worker writes it; readers copy it
// whole under the spinlock (the copy is a plain struct, no pointers), so a
// reader never sees a torn update. Sizes are fixed: text is truncated.
#pragma once

extern "C" {
#include "postgres.h"

#include "storage/spin.h"
}

#include <cstdint>

namespace wp::pg {

constexpr int kStatusMaxSafekeepers = 32;
constexpr int kStatusTextSize = 256;

struct SafekeeperStatusRow {
    char address[kStatusTextSize];
    std::uint64_t node_id;  // member form: the configuration's id (0: legacy list)
    char state[32];
    std::uint64_t term;
    std::uint64_t flush_lsn;
    char last_error[kStatusTextSize];
};

struct SharedStatus {
    slock_t mutex;
    int worker_pid;  // 0 when no worker runs
    char state[32];  // proposer state, e.g. "streaming", "superseded"
    std::uint64_t term;
    std::uint64_t commit_lsn;
    std::uint64_t local_flush_lsn;  // primary's GetFlushRecPtr() as last seen
    std::uint64_t truncate_lsn;
    char message[kStatusTextSize];  // last notable event (e.g. the superseded reason)
    // When COMMITs began to wait beyond the quorum's commit LSN (a
    // TimestampTz; 0 when none waits).
    std::int64_t commit_wait_since;
    // Membership (member form of walproposer.safekeepers; generation 0 and
    // empty texts for the legacy list): "{id=host:port,...}".
    std::uint32_t configuration_generation;
    char members[2048];
    char new_members[2048];  // "" unless a change is in progress (joint)
    int safekeeper_count;
    SafekeeperStatusRow safekeepers[kStatusMaxSafekeepers];
};

// Registers the shmem request and startup hooks; call from _PG_init.
void install_shared_status_hooks();

// The struct in shared memory (valid after shmem startup), never null then.
SharedStatus* shared_status();

// Copies the whole struct under the lock into `out`.
void read_shared_status(SharedStatus* out);

}  // namespace wp::pg
