// The walproposer background worker: a synchronous-replication participant
// that streams the primary's WAL to the safekeepers through the proposer
// core (driver.h) and publishes the quorum's commit LSN as its flush
// position, which releases waiting COMMITs.
//
// This file holds the main loop, the signals and the shutdown; the loop's
// parts are in worker_syncrep (the WalSnd slot and the commit LSN),
// worker_slot (the replication slot and hot-standby feedback),
// worker_settings (the driver's inputs and settings, configuration reloads),
// worker_status (the shared status) and worker_wait (the WaitEventSet).
//
// C++/PostgreSQL boundary (cxx_guard.h): walproposer_worker_main and the
// helpers in these files keep only trivially destructible locals; the driver
// (C++ objects) lives on the heap behind g_driver and is only entered under
// run_cxx. PostgreSQL calls that can raise an ERROR (slot management, wait
// sets, SyncRepReleaseWaiters) happen in them, with no C++ object live.
extern "C" {
#include "postgres.h"

#include <signal.h>

#include "access/xlog.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "replication/walsender.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "utils/timestamp.h"
}

#include <malloc.h>

#include <chrono>
#include <cstring>
#include <optional>

#include "cxx_guard.h"
#include "walproposer/commit_lag.h"
#include "driver.h"
#include "guc.h"
#include "worker_settings.h"
#include "worker_slot.h"
#include "worker_status.h"
#include "worker_syncrep.h"
#include "worker_wait.h"

// LSN_FORMAT_ARGS uses a C-only type check; this is the same for C++.
#define WP_LSN_ARGS(lsn) static_cast<uint32>((lsn) >> 32), static_cast<uint32>(lsn)

extern "C" {
PGDLLEXPORT void walproposer_worker_main(Datum main_arg);
}

namespace {

using wp::pg::Driver;
using wp::pg::DriverInputs;
using wp::pg::kErrorBufferSize;
using wp::pg::kWorkerMaxWaitEvents;
using wp::pg::run_cxx;

// SIGTERM comes from the postmaster when the server shuts down, or from
// anyone else (pg_terminate_backend, kill) while it keeps running. Only the
// first kind is a shutdown; on the second the worker exits with status 1 so
// the postmaster starts it again (status 0 would unregister it for good and
// COMMITs would wait for it until the server restarts).
volatile sig_atomic_t g_shutdown_requested = false;   // SIGTERM from the postmaster
volatile sig_atomic_t g_terminate_requested = false;  // SIGTERM from another process
volatile sig_atomic_t g_terminate_sender = 0;         // that process's pid
Driver* g_driver = nullptr;

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

// ---------------------------------------------------------- the driver

void destroy_driver() {
    char errbuf[kErrorBufferSize];
    run_cxx([&] { delete g_driver; }, errbuf, sizeof errbuf);
    g_driver = nullptr;
}

void fatal_from_driver(const char* what, const char* errbuf) {
    ereport(FATAL, (errmsg("walproposer: %s: %s", what, errbuf)));
}

void start_driver(DriverInputs& inputs) {
    char errbuf[kErrorBufferSize];
    if (wp::pg::guc_safekeepers[0] == '\0') {
        // Nothing to stream to: idle until the list is set and reloaded.
        wp::pg::worker_status_set_idle("walproposer.safekeepers is empty");
        return;
    }
    inputs.timeline_start = wp::pg::worker_timeline_start_point();
    g_driver = wp::pg::worker_create_driver(inputs, errbuf, sizeof errbuf);
    if (g_driver == nullptr) {
        wp::pg::worker_status_set_message("error", errbuf);
        ereport(WARNING, (errmsg("walproposer: %s", errbuf)));
        return;
    }
    const XLogRecPtr flush = GetFlushRecPtr(nullptr);
    if (!run_cxx([&] { g_driver->start(now_ms(), flush); }, errbuf, sizeof errbuf))
        fatal_from_driver("cannot start", errbuf);
    wp::pg::worker_status_set_message(nullptr, "");
}

// Says in the log when COMMITs wait for a quorum that is not there, and
// publishes since when (walproposer/commit_wait.h: the first line after 5 s,
// then every 30 s, and one when they are confirmed again).
void report_commit_wait() {
    static std::int64_t published_since = 0;
    const XLogRecPtr oldest_waiter = wp::pg::worker_syncrep_oldest_waiter();
    char line[2048];
    line[0] = '\0';
    wp::TimeMs since = 0;
    const wp::TimeMs now = now_ms();
    char errbuf[kErrorBufferSize];
    if (!run_cxx(
            [&] {
                const std::optional<std::string> text = g_driver->commit_wait_update(now, oldest_waiter);
                if (text) snprintf(line, sizeof line, "%s", text->c_str());
                since = g_driver->commit_wait_since();
            },
            errbuf, sizeof errbuf))
        fatal_from_driver("proposer failed", errbuf);
    if (line[0] != '\0') {
        if (since != 0)
            ereport(WARNING, (errmsg("walproposer: %s", line),
                              errhint("See \"Waiting COMMITs\" in the walproposer operations guide; "
                                      "cancelling a waiting COMMIT leaves it committed locally only.")));
        else
            ereport(LOG, (errmsg("walproposer: %s", line)));
    }
    const std::int64_t since_ts = since == 0 ? 0 : GetCurrentTimestamp() - (now - since) * 1000;
    // Re-publish only when the wait starts or ends (the start stays put).
    if ((since_ts == 0) != (published_since == 0)) {
        wp::pg::worker_status_set_commit_wait_since(since_ts);
        published_since = since_ts;
    }
}

// Fills write_lag, flush_lag and replay_lag of the proposer's
// pg_stat_replication row (walproposer/commit_lag.h): how long ago the
// newest WAL the quorum just confirmed was flushed locally. Once the quorum
// has held everything flushed for kLagIdleClearUs, the lag is cleared to
// NULL, as a walsender clears it for a standby that caught up.
void report_commit_lag(XLogRecPtr local_flush, XLogRecPtr commit_lsn) {
    constexpr TimestampTz kLagIdleClearUs = 5 * USECS_PER_SEC;
    static wp::CommitLagTracker tracker;
    static XLogRecPtr last_commit = InvalidXLogRecPtr;
    static TimestampTz caught_up_since = 0;
    static bool lag_shown = false;
    const TimestampTz now = GetCurrentTimestamp();
    tracker.wal_flushed(local_flush, now);
    if (commit_lsn > last_commit) {
        last_commit = commit_lsn;
        if (const std::optional<std::int64_t> lag = tracker.confirmed(commit_lsn, now)) {
            wp::pg::worker_syncrep_publish_lag(*lag);
            lag_shown = true;
        }
    }
    if (commit_lsn < local_flush) {
        caught_up_since = 0;
    } else if (caught_up_since == 0) {
        caught_up_since = now;
    } else if (lag_shown && now - caught_up_since >= kLagIdleClearUs) {
        wp::pg::worker_syncrep_publish_lag(-1);
        lag_shown = false;
    }
}

}  // namespace

void walproposer_worker_main(Datum) {
    // The worker sends WAL in messages of up to 128 kB, one per safekeeper,
    // freed once libpq has taken them. With glibc's default thresholds every
    // such buffer is a fresh mapping (or heap growth, trimmed again at the
    // next free), so filling it faults in every page: that cost more than
    // the copies themselves. Freed memory is kept for reuse instead; what
    // stays is bounded by what the worker held at its peak (the in-flight
    // WAL per safekeeper, its window of recent WAL).
    mallopt(M_MMAP_THRESHOLD, 32 << 20);
    mallopt(M_TRIM_THRESHOLD, 64 << 20);
    pqsignal(SIGHUP, SignalHandlerForConfigReload);
    install_sigterm_handler();
    BackgroundWorkerUnblockSignals();
    BackgroundWorkerInitializeConnection(nullptr, nullptr, 0);
    pgstat_report_appname(wp::pg::guc_application_name);
    on_shmem_exit(wp::pg::worker_status_clear_at_exit, 0);
    if (max_wal_senders < 1 || wal_level < WAL_LEVEL_REPLICA) {
        // Cannot take part in synchronous replication: say so and stay idle
        // (exiting would only make the postmaster restart us every second).
        const char* why = max_wal_senders < 1
                              ? "max_wal_senders must be at least 1 for walproposer"
                              : "wal_level must be replica or logical for walproposer";
        ereport(WARNING, (errmsg("walproposer: %s; the worker is idle", why),
                          errhint("Change it in postgresql.conf and restart the server.")));
        wp::pg::worker_status_set_message("error", why);
        while (!g_shutdown_requested) {
            if (g_terminate_requested) exit_for_restart();
            (void)WaitLatch(MyLatch, WL_LATCH_SET | WL_EXIT_ON_PM_DEATH, -1L, PG_WAIT_EXTENSION);
            ResetLatch(MyLatch);
            CHECK_FOR_INTERRUPTS();
        }
        elog(LOG, "walproposer: the server is shutting down; the worker exits");
        proc_exit(0);
    }
    wp::pg::worker_syncrep_become_participant();

    DriverInputs inputs;
    wp::pg::worker_gather_driver_inputs(&inputs);

    // The slot keeps the WAL the safekeepers still need.
    char errbuf[kErrorBufferSize];
    if (!wp::pg::worker_slot_acquire(errbuf, sizeof errbuf)) {
        ereport(WARNING, (errmsg("walproposer: cannot use replication slot \"%s\": %s",
                                 wp::pg::guc_slot_name, errbuf),
                          errhint("Without the slot, WAL a lagging safekeeper needs may be "
                                  "removed; set max_replication_slots > 0.")));
        wp::pg::worker_status_set_message(nullptr, errbuf);
    }
    inputs.timeline_start = wp::pg::worker_timeline_start_point();

    elog(LOG, "walproposer: started with safekeepers \"%s\", system id %llu, timeline start %X/%X",
         wp::pg::guc_safekeepers, (unsigned long long)inputs.system_id,
         WP_LSN_ARGS(inputs.timeline_start));
    start_driver(inputs);

    XLogRecPtr shutdown_target = InvalidXLogRecPtr;
    TimestampTz shutdown_deadline = 0;
    wp::pg::WaitSocket sockets[wp::kMaxSafekeepers];
    WaitEvent events[kWorkerMaxWaitEvents];

    for (;;) {
        CHECK_FOR_INTERRUPTS();
        if (ConfigReloadPending) {
            ConfigReloadPending = false;
            const wp::pg::ReloadAction action = wp::pg::worker_reload_config(g_driver);
            if (action == wp::pg::ReloadAction::kRestartDriver) {
                wp::pg::worker_wait_forget();
                destroy_driver();
                start_driver(inputs);
            } else if (action == wp::pg::ReloadAction::kChangeMembership) {
                if (!wp::pg::worker_request_membership(g_driver, errbuf, sizeof errbuf))
                    ereport(WARNING, (errmsg("walproposer: cannot change the safekeepers: %s", errbuf)));
            }
        }

        // Terminated outside a shutdown: no point draining, the restarted
        // worker streams on from where the quorum is.
        if (g_terminate_requested && !g_shutdown_requested) exit_for_restart();

        const XLogRecPtr local_flush = GetFlushRecPtr(nullptr);
        if (g_shutdown_requested && shutdown_deadline == 0) {
            shutdown_target = local_flush;
            shutdown_deadline =
                TimestampTzPlusMilliseconds(GetCurrentTimestamp(), wp::pg::guc_shutdown_timeout_ms);
            elog(LOG,
                 "walproposer: the server is shutting down; waiting up to %d ms for the quorum "
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
                ereport(FATAL, (errmsg("walproposer: %s",
                                       g_driver->fatal_error().c_str())));
            wp::pg::worker_syncrep_publish_commit_lsn(g_driver->commit_lsn(), g_driver->sent_lsn());
            report_commit_lag(local_flush, g_driver->commit_lsn());
            wp::pg::worker_slot_advance(g_driver->primary_retention_lsn());
            // Only an elected proposer hears from streaming safekeepers; keep
            // the last feedback while campaigning or reconnecting.
            if (g_driver->elected()) {
                const wp::Proposer::HotStandbyFeedback feedback = g_driver->hot_standby_feedback();
                wp::pg::worker_slot_apply_hot_standby_feedback(feedback.xmin, feedback.catalog_xmin);
            }
            wp::pg::worker_status_publish(*g_driver, local_flush);
            report_commit_wait();
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
                    elog(LOG,
                         "walproposer: shutdown timeout reached; the quorum confirmed "
                         "%X/%X of %X/%X",
                         WP_LSN_ARGS(g_driver ? g_driver->commit_lsn() : 0),
                         WP_LSN_ARGS(shutdown_target));
                break;
            }
        }

        const long timeout = g_driver ? g_driver->wait_timeout_ms(now_ms(), kTickMs) : kTickMs;
        wp::pg::worker_wait_prepare(safekeeper_count, sockets);
        const int n = wp::pg::worker_wait(timeout, events);
        for (int e = 0; e < n; ++e) {
            if (events[e].events & WL_LATCH_SET) {
                ResetLatch(MyLatch);
                continue;
            }
            if (events[e].events & (WL_SOCKET_READABLE | WL_SOCKET_WRITEABLE)) {
                const auto index =
                    static_cast<std::size_t>(reinterpret_cast<intptr_t>(events[e].user_data));
                const wp::TimeMs now = now_ms();
                if (!run_cxx([&] { g_driver->on_socket_ready(index, now); }, errbuf, sizeof errbuf))
                    fatal_from_driver("proposer failed", errbuf);
                // An acknowledgement may have moved the commit LSN: release
                // the COMMITs waiting for it now, before the other events
                // and before the newly flushed WAL is sent at the loop's top.
                wp::pg::worker_syncrep_publish_commit_lsn(g_driver->commit_lsn(), g_driver->sent_lsn());
            }
        }
    }
    // Only reached at a server shutdown: the postmaster restarts no worker
    // then, whatever the exit status.
    proc_exit(0);
}
