// The walproposer worker's writes to the shared status (shared_status.h)
// that walproposer_status() and walproposer_safekeepers() show.
//
// Contract: called only from the walproposer worker (the struct's only
// writer), after shared-memory startup. Each call takes the status spinlock
// once, for a bounded copy of the fields it names, and touches no other
// field: no call copies the whole struct in or out. Nothing here can raise
// an ERROR; the locals are trivially destructible (cxx_guard.h).
#pragma once

extern "C" {
#include "postgres.h"

#include "access/xlogdefs.h"
}

namespace wp::pg {

class Driver;

// Sets the message and, when `state` is not null, the state.
void worker_status_set_message(const char* state, const char* message);

// No safekeeper list: records this process as the worker with no
// safekeepers, then state "idle" and the reason.
void worker_status_set_idle(const char* message);

// Writes the driver's view (proposer state, term, LSNs, one row per
// safekeeper) and this process's pid. The message is replaced only when the
// driver has one (a superseded proposer's reason); otherwise the last
// message stays. Keeps the previous status if the driver runs out of memory.
// Publishes when COMMITs began to wait (0: none waits).
void worker_status_set_commit_wait_since(std::int64_t since_timestamptz);

void worker_status_publish(const Driver& driver, XLogRecPtr local_flush);

// on_shmem_exit callback: no worker (pid 0), state "stopped".
void worker_status_clear_at_exit(int code, Datum arg);

}  // namespace wp::pg
