// The worker's wait set; see worker_wait.h.
extern "C" {
#include "postgres.h"

#include "miscadmin.h"
#include "pgstat.h"
#include "storage/latch.h"
#include "utils/memutils.h"
}

#include <cstdint>

#include "wait_bits.h"
#include "worker_wait.h"

static_assert(wp::pg::kWaitReadable == WL_SOCKET_READABLE, "wait bits");
static_assert(wp::pg::kWaitWritable == WL_SOCKET_WRITEABLE, "wait bits");

namespace wp::pg {

namespace {

WaitEventSet* g_wait_set = nullptr;
int g_wait_fds[wp::kMaxSafekeepers];
int g_wait_events[wp::kMaxSafekeepers];
int g_wait_positions[wp::kMaxSafekeepers];
int g_wait_count = -1;  // safekeepers in the set; -1: rebuild

}  // namespace

void worker_wait_prepare(int safekeeper_count, const WaitSocket* sockets) {
    bool rebuild = g_wait_set == nullptr || g_wait_count != safekeeper_count;
    for (int i = 0; !rebuild && i < safekeeper_count; ++i)
        rebuild =
            g_wait_fds[i] != sockets[i].fd || ((g_wait_events[i] == 0) != (sockets[i].events == 0));
    if (rebuild) {
        if (g_wait_set) FreeWaitEventSet(g_wait_set);
        g_wait_set = CreateWaitEventSet(TopMemoryContext, kWorkerMaxWaitEvents);
        AddWaitEventToSet(g_wait_set, WL_LATCH_SET, PGINVALID_SOCKET, MyLatch, nullptr);
        AddWaitEventToSet(g_wait_set, WL_EXIT_ON_PM_DEATH, PGINVALID_SOCKET, nullptr, nullptr);
        for (int i = 0; i < safekeeper_count; ++i) {
            g_wait_fds[i] = sockets[i].fd;
            g_wait_events[i] = sockets[i].events;
            g_wait_positions[i] = -1;
            if (sockets[i].fd >= 0 && sockets[i].events != 0)
                g_wait_positions[i] =
                    AddWaitEventToSet(g_wait_set, sockets[i].events, sockets[i].fd, nullptr,
                                      reinterpret_cast<void*>(static_cast<intptr_t>(i)));
        }
        g_wait_count = safekeeper_count;
        return;
    }
    for (int i = 0; i < safekeeper_count; ++i) {
        if (g_wait_positions[i] >= 0 && g_wait_events[i] != sockets[i].events) {
            ModifyWaitEvent(g_wait_set, g_wait_positions[i], sockets[i].events, nullptr);
            g_wait_events[i] = sockets[i].events;
        }
    }
}

int worker_wait(long timeout_ms, WaitEvent* events) {
    return WaitEventSetWait(g_wait_set, timeout_ms, events, kWorkerMaxWaitEvents,
                            PG_WAIT_EXTENSION);
}

void worker_wait_forget() {
    if (g_wait_set) FreeWaitEventSet(g_wait_set);
    g_wait_set = nullptr;
    g_wait_count = -1;
}

}  // namespace wp::pg
