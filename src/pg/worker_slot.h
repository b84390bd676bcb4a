// The walproposer worker's physical replication slot (walproposer.slot_name):
// it keeps in pg_wal the WAL the safekeepers may still need, and holds the
// xmin / catalog_xmin that standbys streaming from the safekeepers report.
//
// Contract: used only from the walproposer worker's main thread, after
// InitWalSender. worker_slot_acquire is called once; every other call is a
// no-op (or returns InvalidXLogRecPtr) when it did not get the slot. The
// functions keep only trivially destructible locals (cxx_guard.h); those that
// can raise an ERROR say so.
#pragma once

extern "C" {
#include "postgres.h"

#include "access/xlogdefs.h"
}

#include <cstddef>

namespace wp::pg {

// Acquires the slot, creating it (with WAL reserved from the latest redo
// point) when it does not exist. An ERROR on the way (no free slot, a
// logical slot of that name, ...) comes back as false with its message in
// errbuf; the worker then runs without a slot.
bool worker_slot_acquire(char* errbuf, std::size_t errbuf_size);

// The slot's restart LSN; InvalidXLogRecPtr without a slot.
XLogRecPtr worker_slot_restart_lsn();

// Moves the slot's restart LSN forward to truncate_lsn less the
// verification window (wal_retention.h); never backwards.
void worker_slot_advance(XLogRecPtr truncate_lsn);

// Holds the slot's xmin / catalog_xmin at the lowest hot-standby feedback of
// the safekeepers' consumers (full transaction ids, 0 = none), so VACUUM on
// the primary keeps rows a standby query still needs (what a walsender does
// for a standby with a slot).
void worker_slot_apply_hot_standby_feedback(uint64 full_xmin, uint64 full_catalog_xmin);

}  // namespace wp::pg
