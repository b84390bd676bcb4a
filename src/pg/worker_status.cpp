// The worker's narrow writes to the shared status; see worker_status.h.
extern "C" {
#include "postgres.h"

#include "miscadmin.h"
#include "storage/spin.h"
}

#include <cstring>

#include "cxx_guard.h"
#include "driver.h"
#include "shared_status.h"
#include "worker_status.h"

namespace wp::pg {

namespace {

// The driver fills a SharedStatus; this worker-local one (static: large, and
// trivially destructible) receives it, and only the fields the driver writes
// go on to shared memory. It is never read as a whole by anyone else.
SharedStatus g_staging;

}  // namespace

void worker_status_set_message(const char* state, const char* message) {
    SharedStatus* status = shared_status();
    SpinLockAcquire(&status->mutex);
    if (state) snprintf(status->state, sizeof status->state, "%s", state);
    snprintf(status->message, sizeof status->message, "%s", message);
    SpinLockRelease(&status->mutex);
}

void worker_status_set_idle(const char* message) {
    SharedStatus* status = shared_status();
    SpinLockAcquire(&status->mutex);
    status->worker_pid = MyProcPid;
    status->safekeeper_count = 0;
    SpinLockRelease(&status->mutex);
    worker_status_set_message("idle", message);
}

void worker_status_publish(const Driver& driver, XLogRecPtr local_flush) {
    // Driver::fill_status writes the message only when it has one; an empty
    // staging message afterwards means "keep the message in shared memory".
    g_staging.message[0] = '\0';
    char errbuf[kErrorBufferSize];
    if (!run_cxx([&] { driver.fill_status(&g_staging, local_flush); }, errbuf, sizeof errbuf))
        return;  // keep the previous status on out-of-memory
    int count = g_staging.safekeeper_count;
    if (count < 0) count = 0;
    if (count > kStatusMaxSafekeepers) count = kStatusMaxSafekeepers;

    SharedStatus* status = shared_status();
    SpinLockAcquire(&status->mutex);
    status->worker_pid = MyProcPid;
    std::memcpy(status->state, g_staging.state, sizeof status->state);
    status->term = g_staging.term;
    status->commit_lsn = g_staging.commit_lsn;
    status->local_flush_lsn = g_staging.local_flush_lsn;
    status->truncate_lsn = g_staging.truncate_lsn;
    if (g_staging.message[0] != '\0')
        std::memcpy(status->message, g_staging.message, sizeof status->message);
    status->safekeeper_count = g_staging.safekeeper_count;
    status->configuration_generation = g_staging.configuration_generation;
    std::memcpy(status->members, g_staging.members, sizeof status->members);
    std::memcpy(status->new_members, g_staging.new_members, sizeof status->new_members);
    // Rows at and above the count are never read; leave them as they are.
    std::memcpy(status->safekeepers, g_staging.safekeepers,
                static_cast<size_t>(count) * sizeof(SafekeeperStatusRow));
    SpinLockRelease(&status->mutex);
}

void worker_status_set_commit_wait_since(std::int64_t since_timestamptz) {
    SharedStatus* status = shared_status();
    SpinLockAcquire(&status->mutex);
    status->commit_wait_since = since_timestamptz;
    SpinLockRelease(&status->mutex);
}

void worker_status_clear_at_exit(int, Datum) {
    SharedStatus* status = shared_status();
    SpinLockAcquire(&status->mutex);
    status->worker_pid = 0;
    snprintf(status->state, sizeof status->state, "stopped");
    status->commit_wait_since = 0;
    SpinLockRelease(&status->mutex);
}

}  // namespace wp::pg
