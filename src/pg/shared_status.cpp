extern "C" {
#include "postgres.h"

#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
}

#include <cstring>

#include "shared_status.h"

namespace wp::pg {

namespace {

SharedStatus* g_status = nullptr;
shmem_request_hook_type g_prev_request_hook = nullptr;
shmem_startup_hook_type g_prev_startup_hook = nullptr;

void request_shmem() {
    if (g_prev_request_hook) g_prev_request_hook();
    RequestAddinShmemSpace(MAXALIGN(sizeof(SharedStatus)));
}

void startup_shmem() {
    if (g_prev_startup_hook) g_prev_startup_hook();
    bool found = false;
    LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
    g_status = static_cast<SharedStatus*>(
        ShmemInitStruct("walproposer status", sizeof(SharedStatus), &found));
    if (!found) {
        std::memset(g_status, 0, sizeof(SharedStatus));
        SpinLockInit(&g_status->mutex);
        std::strcpy(g_status->state, "not started");
    }
    LWLockRelease(AddinShmemInitLock);
}

}  // namespace

void install_shared_status_hooks() {
    g_prev_request_hook = shmem_request_hook;
    shmem_request_hook = request_shmem;
    g_prev_startup_hook = shmem_startup_hook;
    shmem_startup_hook = startup_shmem;
}

SharedStatus* shared_status() { return g_status; }

void read_shared_status(SharedStatus* out) {
    SpinLockAcquire(&g_status->mutex);
    std::memcpy(out, g_status, sizeof(SharedStatus));
    SpinLockRelease(&g_status->mutex);
}

}  // namespace wp::pg
