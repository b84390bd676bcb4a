// The walproposer background worker: a synchronous-replication participant
// that streams the primary's WAL to the safekeepers through the proposer
// core (driver.h) and publishes the quorum's commit LSN as its flush
// position, which releases waiting COMMITs.
//
// C++/PostgreSQL boundary (cxx_guard.h): walproposer_worker_main and the
// helpers in this file keep only trivially destructible locals; the driver
// (C++ objects) lives on the heap behind g_driver and is only entered under
// run_cxx. PostgreSQL calls that can raise an ERROR (slot management, wait
// sets, SyncRepReleaseWaiters) happen here, with no C++ object live.
extern "C" {
#include "postgres.h"

#include <signal.h>

#include "access/timeline.h"
#include "access/transam.h"
#include "access/xlog.h"
#include "access/xlog_internal.h"
#include "catalog/pg_control.h"
#include "common/string.h"
#include "miscadmin.h"
#include "nodes/pg_list.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "replication/slot.h"
#include "replication/syncrep.h"
#include "replication/walsender.h"
#include "replication/walsender_private.h"
#include "storage/fd.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "storage/spin.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"
}

#include <chrono>
#include <cstring>

#include "cxx_guard.h"
#include "driver.h"
#include "guc.h"
#include "shared_status.h"
#include "term_history_file.h"
#include "wait_bits.h"
#include "wal_retention.h"

// LSN_FORMAT_ARGS uses a C-only type check; this is the same for C++.
#define WP_LSN_ARGS(lsn) static_cast<uint32>((lsn) >> 32), static_cast<uint32>(lsn)

static_assert(wp::pg::kWaitReadable == WL_SOCKET_READABLE, "wait bits");
static_assert(wp::pg::kWaitWritable == WL_SOCKET_WRITEABLE, "wait bits");

extern "C" {
PGDLLEXPORT void walproposer_worker_main(Datum main_arg);
}

namespace {

using wp::pg::Driver;
using wp::pg::kErrorBufferSize;
using wp::pg::run_cxx;

// SIGTERM comes from the postmaster when the server shuts down, or from
// anyone else (pg_terminate_backend, kill) while it keeps running. Only the
// first kind is a shutdown; on the second the worker exits with status 1 so
// the postmaster starts it again (status 0 would unregister it for good and
// COMMITs would wait for it until the server restarts).
volatile sig_atomic_t g_shutdown_requested = false;   // SIGTERM from the postmaster
volatile sig_atomic_t g_terminate_requested = false;  // SIGTERM from another process
volatile sig_atomic_t g_terminate_sender = 0;          // that process's pid
Driver* g_driver = nullptr;
bool g_have_slot = false;

constexpr long kTickMs = 100;

void handle_sigterm(int, siginfo_t* info, void*) {
    const int saved_errno = errno;
    if (info != nullptr && info->si_pid == PostmasterPid) {
        g_shutdown_requested = true;
    } else {
        g_terminate_sender = info != nullptr ? info->si_pid : 0;
        g_terminate_requested = true;
    }
    SetLatch(MyLatch);
    errno = saved_errno;
}

// pqsignal's handlers do not see the sender; this one does (SA_SIGINFO).
void install_sigterm_handler() {
    struct sigaction action;
    std::memset(&action, 0, sizeof action);
    action.sa_sigaction = handle_sigterm;
    sigemptyset(&action.sa_mask);
    action.sa_flags = SA_SIGINFO | SA_RESTART;
    if (sigaction(SIGTERM, &action, nullptr) != 0)
        ereport(FATAL, (errmsg("walproposer: cannot install the SIGTERM handler: %m")));
}

// Terminated while the server keeps running: exit with status 1, which the
// postmaster treats as "restart after bgw_restart_time".
void exit_for_restart() {
    elog(LOG,
         "walproposer: worker terminated by a signal from process %d (not a server shutdown); "
         "exiting with status 1, the postmaster restarts it in %d s",
         static_cast<int>(g_terminate_sender),
         MyBgworkerEntry != nullptr ? MyBgworkerEntry->bgw_restart_time : 1);
    proc_exit(1);
}

wp::TimeMs now_ms() {
    return static_cast<wp::TimeMs>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                       std::chrono::steady_clock::now().time_since_epoch())
                                       .count());
}

// ----------------------------------------------------------- status

void set_status_message(const char* state, const char* message) {
    wp::pg::SharedStatus* status = wp::pg::shared_status();
    SpinLockAcquire(&status->mutex);
    if (state) snprintf(status->state, sizeof status->state, "%s", state);
    snprintf(status->message, sizeof status->message, "%s", message);
    SpinLockRelease(&status->mutex);
}

void publish_status(XLogRecPtr local_flush) {
    static wp::pg::SharedStatus snapshot;  // built outside the spinlock
    wp::pg::SharedStatus* status = wp::pg::shared_status();
    SpinLockAcquire(&status->mutex);
    std::memcpy(&snapshot, status, sizeof snapshot);
    SpinLockRelease(&status->mutex);
    char errbuf[kErrorBufferSize];
    if (!run_cxx([&] { g_driver->fill_status(&snapshot, local_flush); }, errbuf, sizeof errbuf))
        return;  // keep the previous status on out-of-memory
    snapshot.worker_pid = MyProcPid;
    SpinLockAcquire(&status->mutex);
    std::memcpy(reinterpret_cast<char*>(status) + offsetof(wp::pg::SharedStatus, worker_pid),
                reinterpret_cast<char*>(&snapshot) + offsetof(wp::pg::SharedStatus, worker_pid),
                sizeof snapshot - offsetof(wp::pg::SharedStatus, worker_pid));
    SpinLockRelease(&status->mutex);
}

void clear_status_at_exit(int, Datum) {
    wp::pg::SharedStatus* status = wp::pg::shared_status();
    SpinLockAcquire(&status->mutex);
    status->worker_pid = 0;
    snprintf(status->state, sizeof status->state, "stopped");
    SpinLockRelease(&status->mutex);
}

// ------------------------------------------------- sync-rep participant

// Becomes a walsender-like process: takes a WalSnd slot (so WAL flushes set
// our latch through WalSndWakeup) and a synchronous-standby priority under
// walproposer.application_name.
void become_sync_rep_participant() {
    am_walsender = true;
    InitWalSender();
    SetConfigOption("application_name", wp::pg::guc_application_name, PGC_USERSET,
                    PGC_S_SESSION);
    SyncRepInitConfig();
    WalSndSetState(WALSNDSTATE_STREAMING);
}

// Publishes the quorum's commit LSN as our write/flush/apply position and
// releases the backends waiting for it.
void publish_commit_lsn(XLogRecPtr commit_lsn, XLogRecPtr sent_lsn) {
    bool changed = false;
    SpinLockAcquire(&MyWalSnd->mutex);
    if (commit_lsn > MyWalSnd->flush) {
        MyWalSnd->write = commit_lsn;
        MyWalSnd->flush = commit_lsn;
        MyWalSnd->apply = commit_lsn;
        changed = true;
    }
    if (sent_lsn > MyWalSnd->sentPtr) MyWalSnd->sentPtr = sent_lsn;
    MyWalSnd->replyTime = GetCurrentTimestamp();
    SpinLockRelease(&MyWalSnd->mutex);
    if (changed) SyncRepReleaseWaiters();
}

// ------------------------------------------------------------ the slot

struct SlotArgs {
    XLogRecPtr restart_lsn;  // out: the slot's restart LSN
};

void acquire_or_create_slot_guarded(void* arg) {
    auto* args = static_cast<SlotArgs*>(arg);
    if (SearchNamedReplicationSlot(wp::pg::guc_slot_name, true) == nullptr) {
        ReplicationSlotCreate(wp::pg::guc_slot_name, false, RS_PERSISTENT, false);
        ReplicationSlotReserveWal();
        ReplicationSlotMarkDirty();
        ReplicationSlotSave();
        elog(LOG, "walproposer: created physical replication slot \"%s\" at %X/%X",
             wp::pg::guc_slot_name, WP_LSN_ARGS(MyReplicationSlot->data.restart_lsn));
    } else {
        ReplicationSlotAcquire(wp::pg::guc_slot_name, true);
        if (!SlotIsPhysical(MyReplicationSlot))
            ereport(ERROR, (errmsg("replication slot \"%s\" is not a physical slot",
                                   wp::pg::guc_slot_name)));
        if (MyReplicationSlot->data.restart_lsn == InvalidXLogRecPtr) {
            ReplicationSlotReserveWal();
            ReplicationSlotMarkDirty();
            ReplicationSlotSave();
        }
    }
    SpinLockAcquire(&MyReplicationSlot->mutex);
    args->restart_lsn = MyReplicationSlot->data.restart_lsn;
    SpinLockRelease(&MyReplicationSlot->mutex);
}

// Moves the slot's restart LSN forward to what every safekeeper has, less
// the verification window (wal_retention.h); never backwards.
void advance_slot(XLogRecPtr truncate_lsn) {
    if (!g_have_slot || truncate_lsn <= wp::pg::kWalVerifyWindowBytes) return;
    const XLogRecPtr lsn = truncate_lsn - wp::pg::kWalVerifyWindowBytes;
    bool moved = false;
    SpinLockAcquire(&MyReplicationSlot->mutex);
    if (lsn > MyReplicationSlot->data.restart_lsn) {
        MyReplicationSlot->data.restart_lsn = lsn;
        moved = true;
    }
    SpinLockRelease(&MyReplicationSlot->mutex);
    if (moved) {
        ReplicationSlotMarkDirty();
        ReplicationSlotsComputeRequiredLSN();
    }
}

// A full transaction id from hot-standby feedback (forwarded by the
// safekeepers) as a 32-bit xid the slot can hold: InvalidTransactionId for
// "none" or for a value that is not in the recent past (a bogus or stale
// report); clamped up to the oldest xid still in the clog.
TransactionId feedback_xid(uint64 full) {
    if (full == 0) return InvalidTransactionId;
    const uint64 next = U64FromFullTransactionId(ReadNextFullTransactionId());
    if (full > next || next - full >= (uint64(1) << 31)) return InvalidTransactionId;
    TransactionId xid = static_cast<TransactionId>(full & 0xFFFFFFFF);
    if (!TransactionIdIsNormal(xid)) return InvalidTransactionId;
    LWLockAcquire(XidGenLock, LW_SHARED);
    const TransactionId oldest = ShmemVariableCache->oldestXid;
    LWLockRelease(XidGenLock);
    if (TransactionIdPrecedes(xid, oldest)) xid = oldest;
    return xid;
}

// Holds the slot's xmin / catalog_xmin at the lowest hot-standby feedback of
// the safekeepers' consumers, so VACUUM on the primary keeps rows a standby
// query still needs (what a walsender does for a standby with a slot).
void apply_hot_standby_feedback(uint64 full_xmin, uint64 full_catalog_xmin) {
    if (!g_have_slot) return;
    const TransactionId xmin = feedback_xid(full_xmin);
    const TransactionId catalog_xmin = feedback_xid(full_catalog_xmin);
    bool changed = false;
    SpinLockAcquire(&MyReplicationSlot->mutex);
    if (MyReplicationSlot->data.xmin != xmin || MyReplicationSlot->effective_xmin != xmin ||
        MyReplicationSlot->data.catalog_xmin != catalog_xmin ||
        MyReplicationSlot->effective_catalog_xmin != catalog_xmin) {
        MyReplicationSlot->data.xmin = xmin;
        MyReplicationSlot->effective_xmin = xmin;
        MyReplicationSlot->data.catalog_xmin = catalog_xmin;
        MyReplicationSlot->effective_catalog_xmin = catalog_xmin;
        changed = true;
    }
    SpinLockRelease(&MyReplicationSlot->mutex);
    if (changed) {
        ReplicationSlotMarkDirty();
        ReplicationSlotsComputeRequiredXmin(false);
    }
}

// ---------------------------------------------------------- the driver

// Reads the PG timeline history file's content for greetings (empty on 1).
void read_timeline_history(TimeLineID tli, char** content, int* length) {
    *content = nullptr;
    *length = 0;
    if (tli <= 1) return;
    char path[MAXPGPATH];
    TLHistoryFilePath(path, tli);
    FILE* file = AllocateFile(path, "r");
    if (file == nullptr) return;
    StringInfoData buffer;
    initStringInfo(&buffer);
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, file)) > 0) appendBinaryStringInfo(&buffer, chunk, n);
    FreeFile(file);
    *content = buffer.data;
    *length = buffer.len;
}

// Where timeline `tli` branched off its parent (0 on timeline 1). A corrupt
// history file raises ERROR here, before any C++ object exists.
XLogRecPtr timeline_switch_point(TimeLineID tli) {
    if (tli <= 1) return InvalidXLogRecPtr;
    List* history = readTimeLineHistory(tli);
    XLogRecPtr point = InvalidXLogRecPtr;
    ListCell* cell;
    foreach (cell, history) {
        TimeLineHistoryEntry* entry = static_cast<TimeLineHistoryEntry*>(lfirst(cell));
        if (entry->tli == tli) point = entry->begin;
    }
    list_free_deep(history);
    return point;
}

// Plain inputs gathered from PostgreSQL for the driver's settings.
struct DriverInputs {
    uint64 system_id;
    TimeLineID tli;
    XLogRecPtr timeline_start;
    XLogRecPtr switch_point;  // where timeline `tli` begins; 0 on timeline 1
    char* history_content;
    int history_length;
    uint64 random_seed;
};

bool create_driver(const DriverInputs& inputs, char* errbuf, size_t errbuf_size) {
    bool ok = false;
    const bool completed = run_cxx(
        [&] {
            wp::pg::DriverSettings settings;
            auto list = wp::parse_safekeeper_list(wp::pg::guc_safekeepers);
            if (!list) {
                snprintf(errbuf, errbuf_size, "walproposer.safekeepers: %s",
                         list.message().c_str());
                return;
            }
            settings.safekeepers = std::move(*list);
            settings.tenant_hex = wp::pg::guc_tenant_id[0] ? *wp::parse_hex_id(wp::pg::guc_tenant_id)
                                                  : wp::default_id_from_system_id(inputs.system_id);
            settings.timeline_hex = wp::pg::guc_timeline_id[0]
                                        ? *wp::parse_hex_id(wp::pg::guc_timeline_id)
                                        : wp::default_id_from_system_id(inputs.system_id);
            settings.application_name = wp::pg::guc_application_name;
            settings.connect_timeout_ms = wp::pg::guc_connect_timeout_ms;
            settings.reconnect_timeout_ms = wp::pg::guc_reconnect_timeout_ms;
            settings.timeline_start_lsn = inputs.timeline_start;
            settings.timeline_switch_point = inputs.switch_point;
            settings.random_seed = inputs.random_seed;
            auto history = wp::pg::load_term_history(inputs.tli);
            if (!history) {
                snprintf(errbuf, errbuf_size, "%s", history.message().c_str());
                return;
            }
            settings.own_term_history = std::move(*history);
            wp::ProposerGreeting& greeting = settings.greeting;
            greeting.system_id = inputs.system_id;
            greeting.pg_version = PG_VERSION_NUM;
            greeting.wal_segment_size = static_cast<std::uint32_t>(wal_segment_size);
            greeting.pg_timeline = inputs.tli;
            greeting.tenant_id = *wp::parse_id(settings.tenant_hex);
            greeting.timeline_id = *wp::parse_id(settings.timeline_hex);
            for (int i = 0; i < 16; ++i) {
                greeting.proposer_id[i] =
                    static_cast<std::uint8_t>((inputs.random_seed >> ((i % 8) * 8)) ^ i);
            }
            if (inputs.history_content)
                greeting.pg_timeline_history.assign(inputs.history_content, inputs.history_length);
            g_driver = new Driver(std::move(settings));
            ok = true;
        },
        errbuf, errbuf_size);
    return completed && ok;
}

void destroy_driver() {
    char errbuf[kErrorBufferSize];
    run_cxx([&] { delete g_driver; }, errbuf, sizeof errbuf);
    g_driver = nullptr;
}

// ------------------------------------------------------------ waiting

constexpr int kMaxWaitEvents = 2 + wp::kMaxSafekeepers;
WaitEventSet* g_wait_set = nullptr;
int g_wait_fds[wp::kMaxSafekeepers];
int g_wait_events[wp::kMaxSafekeepers];
int g_wait_positions[wp::kMaxSafekeepers];
int g_wait_count = -1;  // safekeepers in the set; -1: rebuild

// Rebuilds the wait set when a socket changed; otherwise adjusts events.
void prepare_wait_set(int safekeeper_count, const wp::pg::WaitSocket* sockets) {
    bool rebuild = g_wait_set == nullptr || g_wait_count != safekeeper_count;
    for (int i = 0; !rebuild && i < safekeeper_count; ++i)
        rebuild = g_wait_fds[i] != sockets[i].fd ||
                  ((g_wait_events[i] == 0) != (sockets[i].events == 0));
    if (rebuild) {
        if (g_wait_set) FreeWaitEventSet(g_wait_set);
        g_wait_set = CreateWaitEventSet(TopMemoryContext, kMaxWaitEvents);
        AddWaitEventToSet(g_wait_set, WL_LATCH_SET, PGINVALID_SOCKET, MyLatch, nullptr);
        AddWaitEventToSet(g_wait_set, WL_EXIT_ON_PM_DEATH, PGINVALID_SOCKET, nullptr, nullptr);
        for (int i = 0; i < safekeeper_count; ++i) {
            g_wait_fds[i] = sockets[i].fd;
            g_wait_events[i] = sockets[i].events;
            g_wait_positions[i] = -1;
            if (sockets[i].fd >= 0 && sockets[i].events != 0)
                g_wait_positions[i] = AddWaitEventToSet(
                    g_wait_set, sockets[i].events, sockets[i].fd, nullptr,
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

void forget_wait_set() {
    if (g_wait_set) FreeWaitEventSet(g_wait_set);
    g_wait_set = nullptr;
    g_wait_count = -1;
}

// --------------------------------------------------------- main loop

void fatal_from_driver(const char* what, const char* errbuf) {
    ereport(FATAL, (errmsg("walproposer: %s: %s", what, errbuf)));
}

// The timeline starts (on empty safekeepers) at the start of the segment
// holding the slot's restart point: the latest checkpoint's redo point when
// the slot is new, or what every safekeeper of the old set had. That WAL is
// still in pg_wal.
XLogRecPtr timeline_start_point() {
    XLogRecPtr point = InvalidXLogRecPtr;
    if (g_have_slot) {
        SpinLockAcquire(&MyReplicationSlot->mutex);
        point = MyReplicationSlot->data.restart_lsn;
        SpinLockRelease(&MyReplicationSlot->mutex);
    }
    if (point == InvalidXLogRecPtr) point = GetRedoRecPtr();
    return point - XLogSegmentOffset(point, wal_segment_size);
}

void start_driver(DriverInputs& inputs) {
    char errbuf[kErrorBufferSize];
    if (wp::pg::guc_safekeepers[0] == '\0') {
        // Nothing to stream to: idle until the list is set and reloaded.
        wp::pg::SharedStatus* status = wp::pg::shared_status();
        SpinLockAcquire(&status->mutex);
        status->worker_pid = MyProcPid;
        status->safekeeper_count = 0;
        SpinLockRelease(&status->mutex);
        set_status_message("idle", "walproposer.safekeepers is empty");
        return;
    }
    inputs.timeline_start = timeline_start_point();
    if (!create_driver(inputs, errbuf, sizeof errbuf)) {
        set_status_message("error", errbuf);
        ereport(WARNING, (errmsg("walproposer: %s", errbuf)));
        return;
    }
    const XLogRecPtr flush = GetFlushRecPtr(nullptr);
    if (!run_cxx([&] { g_driver->start(now_ms(), flush); }, errbuf, sizeof errbuf))
        fatal_from_driver("cannot start", errbuf);
    set_status_message(nullptr, "");
}

}  // namespace

void walproposer_worker_main(Datum) {
    pqsignal(SIGHUP, SignalHandlerForConfigReload);
    install_sigterm_handler();
    BackgroundWorkerUnblockSignals();
    BackgroundWorkerInitializeConnection(nullptr, nullptr, 0);
    pgstat_report_appname(wp::pg::guc_application_name);
    on_shmem_exit(clear_status_at_exit, 0);
    if (max_wal_senders < 1 || wal_level < WAL_LEVEL_REPLICA) {
        // Cannot take part in synchronous replication: say so and stay idle
        // (exiting would only make the postmaster restart us every second).
        const char* why = max_wal_senders < 1
                              ? "max_wal_senders must be at least 1 for walproposer"
                              : "wal_level must be replica or logical for walproposer";
        ereport(WARNING, (errmsg("walproposer: %s; the worker is idle", why),
                          errhint("Change it in postgresql.conf and restart the server.")));
        set_status_message("error", why);
        while (!g_shutdown_requested) {
            if (g_terminate_requested) exit_for_restart();
            (void)WaitLatch(MyLatch, WL_LATCH_SET | WL_EXIT_ON_PM_DEATH, -1L, PG_WAIT_EXTENSION);
            ResetLatch(MyLatch);
            CHECK_FOR_INTERRUPTS();
        }
        elog(LOG, "walproposer: the server is shutting down; the worker exits");
        proc_exit(0);
    }
    become_sync_rep_participant();

    DriverInputs inputs;
    std::memset(&inputs, 0, sizeof inputs);
    inputs.system_id = GetSystemIdentifier();
    inputs.tli = GetWALInsertionTimeLine();
    read_timeline_history(inputs.tli, &inputs.history_content, &inputs.history_length);
    inputs.switch_point = timeline_switch_point(inputs.tli);
    inputs.random_seed = static_cast<uint64>(GetCurrentTimestamp()) ^ (uint64)MyProcPid;

    // The slot keeps the WAL the safekeepers still need.
    SlotArgs slot_args{InvalidXLogRecPtr};
    char errbuf[kErrorBufferSize];
    g_have_slot = wp::pg::pg_guarded_call(acquire_or_create_slot_guarded, &slot_args, errbuf,
                                          sizeof errbuf);
    if (!g_have_slot) {
        ereport(WARNING, (errmsg("walproposer: cannot use replication slot \"%s\": %s",
                                 wp::pg::guc_slot_name, errbuf),
                          errhint("Without the slot, WAL a lagging safekeeper needs may be "
                                  "removed; set max_replication_slots > 0.")));
        set_status_message(nullptr, errbuf);
    }
    inputs.timeline_start = timeline_start_point();

    elog(LOG, "walproposer: started with safekeepers \"%s\", system id %llu, timeline start %X/%X",
         wp::pg::guc_safekeepers, (unsigned long long)inputs.system_id,
         WP_LSN_ARGS(inputs.timeline_start));
    start_driver(inputs);

    XLogRecPtr shutdown_target = InvalidXLogRecPtr;
    TimestampTz shutdown_deadline = 0;
    wp::pg::WaitSocket sockets[wp::kMaxSafekeepers];
    WaitEvent events[kMaxWaitEvents];

    for (;;) {
        CHECK_FOR_INTERRUPTS();
        if (ConfigReloadPending) {
            ConfigReloadPending = false;
            char* old_list = pstrdup(wp::pg::guc_safekeepers);
            ProcessConfigFile(PGC_SIGHUP);
            SetConfigOption("application_name", wp::pg::guc_application_name, PGC_USERSET,
                            PGC_S_SESSION);
            SyncRepInitConfig();
            if (strcmp(old_list, wp::pg::guc_safekeepers) != 0) {
                elog(LOG, "walproposer: safekeepers changed from \"%s\" to \"%s\"; reconnecting",
                     old_list, wp::pg::guc_safekeepers);
                forget_wait_set();
                destroy_driver();
                start_driver(inputs);
            }
            pfree(old_list);
        }

        // Terminated outside a shutdown: no point draining, the restarted
        // worker streams on from where the quorum is.
        if (g_terminate_requested && !g_shutdown_requested) exit_for_restart();

        const XLogRecPtr local_flush = GetFlushRecPtr(nullptr);
        if (g_shutdown_requested && shutdown_deadline == 0) {
            shutdown_target = local_flush;
            shutdown_deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
                                                            wp::pg::guc_shutdown_timeout_ms);
            elog(LOG, "walproposer: the server is shutting down; waiting up to %d ms for the quorum "
                      "to confirm %X/%X, then the worker exits",
                 wp::pg::guc_shutdown_timeout_ms, WP_LSN_ARGS(shutdown_target));
        }

        int safekeeper_count = 0;
        if (g_driver) {
            const wp::TimeMs now = now_ms();
            if (!run_cxx(
                    [&] {
                        g_driver->on_wal_available(local_flush, now);
                        g_driver->on_tick(now);
                    },
                    errbuf, sizeof errbuf))
                fatal_from_driver("proposer failed", errbuf);
            if (!g_driver->healthy())
                ereport(FATAL, (errmsg("walproposer: cannot persist the term history: %s",
                                       g_driver->fatal_error().c_str())));
            publish_commit_lsn(g_driver->commit_lsn(), g_driver->sent_lsn());
            wp::Lsn truncate_lsn = 0;
            uint64 hs_xmin = 0, hs_catalog_xmin = 0;
            bool elected = false;
            run_cxx(
                [&] {
                    const wp::ProposerStatus st = g_driver->status();
                    truncate_lsn = st.truncate_lsn;
                    hs_xmin = st.hs_xmin;
                    hs_catalog_xmin = st.hs_catalog_xmin;
                    elected = st.state == wp::ProposerState::kElected;
                },
                errbuf, sizeof errbuf);
            advance_slot(truncate_lsn);
            // Only an elected proposer hears from streaming safekeepers; keep
            // the last feedback while campaigning or reconnecting.
            if (elected) apply_hot_standby_feedback(hs_xmin, hs_catalog_xmin);
            publish_status(local_flush);
            safekeeper_count = static_cast<int>(g_driver->safekeeper_count());
            for (int i = 0; i < safekeeper_count; ++i)
                sockets[i] = g_driver->wait_socket(static_cast<std::size_t>(i));
        }

        if (shutdown_deadline != 0) {
            const bool confirmed = g_driver && g_driver->commit_lsn() >= shutdown_target;
            if (confirmed || GetCurrentTimestamp() >= shutdown_deadline) {
                if (confirmed)
                    elog(LOG, "walproposer: the quorum confirmed %X/%X; exiting",
                         WP_LSN_ARGS(shutdown_target));
                else
                    elog(LOG, "walproposer: shutdown timeout reached; the quorum confirmed "
                              "%X/%X of %X/%X",
                         WP_LSN_ARGS(g_driver ? g_driver->commit_lsn() : 0),
                         WP_LSN_ARGS(shutdown_target));
                break;
            }
        }

        prepare_wait_set(safekeeper_count, sockets);
        const int n = WaitEventSetWait(g_wait_set, kTickMs, events, kMaxWaitEvents,
                                       PG_WAIT_EXTENSION);
        for (int e = 0; e < n; ++e) {
            if (events[e].events & WL_LATCH_SET) {
                ResetLatch(MyLatch);
                continue;
            }
            if (events[e].events & (WL_SOCKET_READABLE | WL_SOCKET_WRITEABLE)) {
                const auto index = static_cast<std::size_t>(
                    reinterpret_cast<intptr_t>(events[e].user_data));
                const wp::TimeMs now = now_ms();
                if (!run_cxx([&] { g_driver->on_socket_ready(index, now); }, errbuf, sizeof errbuf))
                    fatal_from_driver("proposer failed", errbuf);
            }
        }
    }
    // Only reached at a server shutdown: the postmaster restarts no worker
    // then, whatever the exit status.
    proc_exit(0);
}
