// The walproposer worker as a participant in PostgreSQL's synchronous
// replication: a walsender-like process with a WalSnd slot whose flush
// position is the quorum's commit LSN.
//
// Contract: used only from the walproposer worker's main thread.
// worker_syncrep_become_participant is called once, before any other call;
// it and the others can raise an ERROR (InitWalSender, SetConfigOption,
// SyncRepReleaseWaiters), so callers hold no C++ object with a destructor
// (cxx_guard.h).
#pragma once

extern "C" {
#include "postgres.h"

#include "access/xlogdefs.h"
}

namespace wp::pg {

// Becomes a walsender-like process: takes a WalSnd slot (so WAL flushes set
// our latch through WalSndWakeup) and a synchronous-standby priority under
// walproposer.application_name; state "streaming" in pg_stat_replication.
void worker_syncrep_become_participant();

// Sets application_name to walproposer.application_name again and
// recomputes our synchronous-standby priority (after a configuration
// reload).
void worker_syncrep_reload_config();

// Publishes the quorum's commit LSN as our write/flush/apply position (never
// backwards) and `sent_lsn` as the sent position, and releases the backends
// waiting for it.
void worker_syncrep_publish_commit_lsn(XLogRecPtr commit_lsn, XLogRecPtr sent_lsn);

// Publishes the quorum's lag (microseconds; -1: none, shown as NULL) as the
// write, flush and replay lag of the proposer's pg_stat_replication row: a
// safekeeper confirms WAL only once it is durable, so the three are equal.
void worker_syncrep_publish_lag(TimeOffset lag_us);

// The lowest LSN a backend waits for in any synchronous-replication queue
// (InvalidXLogRecPtr when none waits). Takes SyncRepLock in shared mode.
XLogRecPtr worker_syncrep_oldest_waiter();

}  // namespace wp::pg
