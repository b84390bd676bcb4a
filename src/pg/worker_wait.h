// The walproposer worker's WaitEventSet: its latch, postmaster death, and
// one socket per safekeeper connection, so one slow or dead safekeeper never
// stalls the others.
//
// Contract: used only from the walproposer worker's main thread. The set is
// allocated in TopMemoryContext and kept across loop passes; it is rebuilt
// when a socket appeared, went away or changed, and otherwise only has its
// events adjusted. Creating or changing it can raise an ERROR, so callers
// hold no C++ object with a destructor (cxx_guard.h).
#pragma once

extern "C" {
#include "postgres.h"

#include "storage/latch.h"
}

#include "driver.h"
#include "walproposer/config.h"

namespace wp::pg {

// Events one wait can return: the latch, postmaster death, the sockets.
constexpr int kWorkerMaxWaitEvents = 2 + wp::kMaxSafekeepers;

// Makes the set wait for the latch and for `sockets[0..safekeeper_count)`
// (their events; a socket with fd < 0 or no events is left out). The user
// data of a socket's event is its index.
void worker_wait_prepare(int safekeeper_count, const WaitSocket* sockets);

// Waits up to timeout_ms on the prepared set; returns the number of events
// written to `events` (at most kWorkerMaxWaitEvents).
int worker_wait(long timeout_ms, WaitEvent* events);

// Frees the set: the next worker_wait_prepare rebuilds it (the safekeeper
// connections are about to be replaced).
void worker_wait_forget();

}  // namespace wp::pg
